import assert from "node:assert/strict";
import {
  bold,
  code,
  escapeText,
  image,
  parseTables,
  raw,
  referencedFiles,
  splitRow,
  table,
  tableProblems,
} from "./markdown.ts";

Deno.test("escapeText keeps intraword underscores and escapes Markdown syntax", () => {
  assert.equal(escapeText("abinet_vision"), "abinet_vision");
  assert.equal(
    escapeText("_x_ *y* a|b [c](d) <e> `f` 1\\2"),
    "\\_x\\_ \\*y\\* a\\|b \\[c\\](d) \\<e\\> \\`f\\` 1\\\\2",
  );
  assert.equal(escapeText("two\nlines"), "two<br>lines");
  assert.equal(escapeText("R&D"), "R&amp;D");
});

Deno.test("table: alignment, padding, escaping of pipes (also inside code spans)", () => {
  const md = table(
    ["Model", "CCR", "note"],
    [["ABINet-Vision", bold("0.943"), code("a|b")], ["x|y", "0.9", raw("*ok*")]],
    ["left", "right", "center"],
  );
  const lines = md.split("\n");
  assert.equal(lines[0], "| Model         |       CCR | note   |");
  assert.equal(lines[1], "| ------------- | --------: | :----: |");
  assert.equal(lines[2], "| ABINet-Vision | **0.943** | `a\\|b` |");
  assert.equal(lines[3], "| x\\|y          |       0.9 | *ok*   |");
  const [t] = parseTables(md);
  assert.deepEqual(t.header, ["Model", "CCR", "note"]);
  assert.deepEqual(t.align, ["left", "right", "center"]);
  assert.equal(t.rows.length, 2);
  assert.deepEqual(tableProblems(md), []);
});

Deno.test("table rejects ragged rows", () => {
  assert.throws(() => table(["a", "b"], [["1"]]), /row 1 has 1 cells, the header has 2/);
  assert.throws(() => table([], []), /no columns/);
});

Deno.test("parseTables and tableProblems find broken tables, ignoring fenced code", () => {
  const doc = [
    "# t",
    "",
    "| a | b |",
    "|---|:-:|",
    "| 1 | 2 |",
    "| 1 | 2 | 3 |",
    "",
    "```",
    "| not | a |",
    "|---|---|",
    "| table |",
    "```",
  ].join("\n");
  const tables = parseTables(doc);
  assert.equal(tables.length, 1);
  assert.deepEqual(tableProblems(doc), ["table at line 3: row 2 has 3 cells, the header has 2"]);
  assert.deepEqual(splitRow("| a \\| b | c |"), ["a \\| b", "c"]);
  assert.deepEqual(splitRow("a | b"), ["a", "b"]);
});

Deno.test("referencedFiles lists relative link and image targets only", () => {
  const doc = [
    image("loss curve", "loss.svg").md,
    "[lock](strata.lock#top) [web](https://example.org) [anchor](#x)",
    "`[not](code.md)`",
    '<img src="val accuracy.svg">',
    image("spaced", "a b.svg").md,
  ].join("\n");
  assert.deepEqual(referencedFiles(doc), ["loss.svg", "strata.lock", "val accuracy.svg", "a b.svg"]);
});
