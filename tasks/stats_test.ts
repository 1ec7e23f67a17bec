import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../cli/stats.ts";
import { stageContext } from "../testing/stage_ctx.ts";
import kind from "./stats.ts";

const PY_LMDB = fileURLToPath(new URL("../testdata/python_lmdb", import.meta.url));
const DEMO = fileURLToPath(new URL("../../shared/data/demo", import.meta.url));
const HAVE_SHARED = existsSync(DEMO);

Deno.test("stats kind: markdown and json of an LMDB", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-stats-test-" });
  try {
    const ctx = await stageContext(kind, dir, {}, { data: PY_LMDB });
    const result = await kind.run(ctx);
    const md = await Deno.readTextFile(ctx.output("markdown"));
    const json = JSON.parse(await Deno.readTextFile(ctx.output("json")));
    assert.match(md.split("\n")[0], /^5 samples in `path:.*python_lmdb` \(LMDB\)$/);
    assert.ok(!md.includes("Source:"));
    assert.equal(json.count, 5);
    assert.deepEqual(json.labels.length_histogram, { "2": 1, "3": 1, "4": 2, "12": 1 });
    assert.deepEqual(json.images.formats, { jpeg: 2, png: 3 });
    assert.deepEqual(json.images.width.min, 30);
    assert.deepEqual(json.labels.char_frequency[0], ["r", 3]);
    assert.equal(result!.summary!.count, 5);
    assert.match(md, /## Images/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test({
  name: `stats command: sample count on the first line, for an LMDB and for image folders${
    HAVE_SHARED ? "" : " (SKIPPED: ../shared/data is absent)"
  }`,
  ignore: !HAVE_SHARED,
}, async () => {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    assert.equal(await main([PY_LMDB]), 0);
    assert.match(lines.join("\n").split("\n")[0], /^5 samples /);
    lines.length = 0;
    assert.equal(await main([DEMO]), 0);
    assert.match(lines.join("\n").split("\n")[0], /^6 samples in `demo` \(image folder, layout tsv\)/);
    lines.length = 0;
    const dir = await Deno.makeTempDir({ prefix: "strata-stats-test-" });
    try {
      await fs.mkdir(join(dir, "a"));
      await fs.copyFile(join(DEMO, "ic13_word_256.png"), join(dir, "a", "x.png"));
      await fs.copyFile(join(DEMO, "cute-184.jpg"), join(dir, "y.jpg"));
      assert.equal(await main([dir, "--json"]), 0);
      const json = JSON.parse(lines.join("\n"));
      assert.equal(json.count, 2);
      assert.equal(json.labels, undefined);
      assert.deepEqual(json.images.formats, { png: 1, jpeg: 1 });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  } finally {
    console.log = original;
  }
  const errors: string[] = [];
  const originalError = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(" "));
  try {
    assert.equal(await main(["/nonexistent/strata"]), 1);
    assert.match(errors[0], /no such file or directory/);
    assert.equal(await main([]), 2);
  } finally {
    console.error = originalError;
  }
});
