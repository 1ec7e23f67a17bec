import assert from "node:assert/strict";
import { charsetFor, LabelCounts, MAX_LENGTH } from "./charset.ts";

Deno.test("protocol 36 follows ABINet's charset_36 order", () => {
  const cs = charsetFor(36);
  assert.equal(cs.numClasses, 37);
  assert.equal(cs.classOf("a"), 1);
  assert.equal(cs.classOf("z"), 26);
  assert.equal(cs.classOf("1"), 27);
  assert.equal(cs.classOf("9"), 35);
  assert.equal(cs.classOf("0"), 36);
  assert.equal(cs.classOf("A"), -1);
});

Deno.test("protocols nest: 36 ⊂ 62 ⊂ 94 with the same classes", () => {
  const [a, b, c] = [charsetFor(36), charsetFor(62), charsetFor(94)];
  assert.equal(b.numClasses, 63);
  assert.equal(c.numClasses, 95);
  assert.ok(b.chars.startsWith(a.chars));
  assert.ok(c.chars.startsWith(b.chars));
  assert.equal(b.classOf("A"), 37);
  assert.equal(b.classOf("Z"), 62);
  assert.equal(c.classOf("!"), 63);
  assert.equal(c.classOf("~"), 94);
  assert.equal(c.classOf(" "), -1);
  assert.equal(new Set(c.chars).size, 94);
});

Deno.test("normalize: NFKD, case folding, removal, drops", () => {
  const cs = charsetFor(36);
  assert.deepEqual(cs.normalize("hello"), { ok: true, text: "hello", changes: [] });
  assert.deepEqual(cs.normalize("Café!"), {
    ok: true,
    text: "cafe",
    changes: ["unicode_normalized", "case_folded", "chars_removed"],
  });
  assert.deepEqual(cs.normalize("ﬁ"), { ok: true, text: "fi", changes: ["unicode_normalized"] });
  const empty = cs.normalize("");
  assert.equal(empty.ok, false);
  assert.equal(!empty.ok && empty.reason, "empty");
  assert.equal((cs.normalize("!!!") as { reason: string }).reason, "empty");
  assert.equal((cs.normalize("a".repeat(26)) as { reason: string }).reason, "too_long");
  assert.equal(cs.normalize("a".repeat(25)).ok, true);
  assert.equal((cs.normalize("abc", { maxLength: 2 }) as { reason: string }).reason, "too_long");
  assert.equal((cs.normalize("a-b", { unsupported: "drop" }) as { reason: string }).reason, "unsupported_char");
  assert.equal(cs.normalize("a b", { unsupported: "drop" }).ok, true);

  assert.deepEqual(charsetFor(62).normalize("Hello!"), { ok: true, text: "Hello", changes: ["chars_removed"] });
  assert.deepEqual(charsetFor(94).normalize("Hello!"), { ok: true, text: "Hello!", changes: [] });
});

Deno.test("encode/decode round trip with EOS padding", () => {
  const cs = charsetFor(36);
  const enc = cs.encode("ab0");
  assert.equal(enc.length, MAX_LENGTH + 1);
  assert.deepEqual([...enc.slice(0, 4)], [1, 2, 36, 0]);
  assert.equal(cs.decode(enc), "ab0");
  assert.equal(cs.decode([3, 0, 5]), "c");
  assert.equal(cs.decode([99, 1]), "a");
  assert.throws(() => cs.encode("A"), /not in protocol 36/);
  assert.throws(() => cs.encode("abc", 2), /max length 2/);
  assert.equal(cs.encode("x", 3).length, 4);
});

Deno.test("LabelCounts tallies kept, changed and dropped", () => {
  const cs = charsetFor(36);
  const counts = new LabelCounts();
  for (const [i, l] of ["ok", "OK", "", "a".repeat(30)].entries()) counts.add(cs.normalize(l), l, i + 1);
  assert.equal(counts.kept, 2);
  assert.deepEqual(counts.changed, { case_folded: 1 });
  assert.deepEqual(counts.dropped, { empty: 1, too_long: 1 });
  assert.equal(counts.droppedTotal, 2);
  assert.match(counts.examples.too_long[0], /^4: 30 characters/);
});
