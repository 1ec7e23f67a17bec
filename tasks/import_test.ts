import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openLmdb } from "../data/lmdb.ts";
import { stageContext } from "../testing/stage_ctx.ts";
import kind, { detectLayout } from "./import.ts";

const REAL = fileURLToPath(new URL("../../shared/data/real/iiit5k_test", import.meta.url));
const DEMO = fileURLToPath(new URL("../../shared/data/demo", import.meta.url));
const HAVE_SHARED = existsSync(REAL) && existsSync(DEMO);

async function labelsOf(path: string): Promise<string[]> {
  const r = await openLmdb(path);
  try {
    const out: string[] = [];
    for (let i = 1; i <= r.size; i++) {
      const s = r.read(i);
      assert.ok(s.ok);
      out.push(s.sample.label);
    }
    return out;
  } finally {
    await r.close();
  }
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "strata-import-test-" });
  try {
    await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function realImage(n: number): Promise<Uint8Array> {
  return await Deno.readFile(join(REAL, "IMG", `${n}.jpg`));
}

Deno.test({
  name: `import: real layout in numeric order; unreadable images listed with reasons${
    HAVE_SHARED ? "" : " (SKIPPED: ../shared/data is absent)"
  }`,
  ignore: !HAVE_SHARED,
}, async () => {
  await withDir(async (dir) => {
    const src = join(dir, "src");
    await fs.mkdir(join(src, "IMG"), { recursive: true });
    await fs.mkdir(join(src, "label"), { recursive: true });
    const put = async (stem: string, img: Uint8Array | undefined, label: string | undefined) => {
      if (img) await Deno.writeFile(join(src, "IMG", `${stem}.jpg`), img);
      if (label !== undefined) await Deno.writeTextFile(join(src, "label", `${stem}.txt`), label);
    };
    await put("1", await realImage(1), "PRIVATE\n");
    await put("2", await realImage(2), "PARKING");
    await put("10", await realImage(3), "SALUTES");
    await put("3", new TextEncoder().encode("not a jpeg"), "BROKEN");
    await put("4", undefined, "NOIMAGE");
    await put("5", await realImage(4), "");
    const ctx = await stageContext(kind, join(dir, "run"), {}, { source: src });
    const result = await kind.run(ctx);
    assert.deepEqual(await labelsOf(ctx.output("lmdb")), ["PRIVATE", "PARKING", "SALUTES"]);
    const summary = result!.summary!;
    assert.equal(summary.layout, "real");
    assert.equal(summary.written, 3);
    assert.equal(summary.skipped, 3);
    assert.deepEqual(summary.skipped_by_reason, { undecodable_image: 1, unlisted: 1, empty_label: 1 });
    const unreadable = summary.unreadable as { where: string; reason: string }[];
    assert.match(unreadable[0].where, /IMG\/3\.jpg/);
    assert.match(unreadable[0].reason, /undecodable/);
    assert.match(result!.notes![0], /skipped 3 of 6/);

    // The same with policy: error fails, naming the sample; nothing is left at the output.
    const strict = await stageContext(kind, join(dir, "strict"), { policy: "error" }, { source: src });
    await assert.rejects(kind.run(strict), /IMG\/3\.jpg.*undecodable/);
    assert.deepEqual(
      await Array.fromAsync(Deno.readDir(join(dir, "strict", "outputs"))).then((l) => l.map((e) => e.name)),
      [
        "lmdb",
      ],
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(strict.output("lmdb"))), []);
  });
});

Deno.test({
  name: `import: labels.tsv (the shared demo folder, read-only) and gt.txt${
    HAVE_SHARED ? "" : " (SKIPPED: ../shared/data is absent)"
  }`,
  ignore: !HAVE_SHARED,
}, async () => {
  await withDir(async (dir) => {
    const ctx = await stageContext(kind, join(dir, "tsv"), { layout: "auto" }, { source: DEMO });
    const result = await kind.run(ctx);
    const expected = (await Deno.readTextFile(join(DEMO, "labels.tsv"))).trim().split("\n").map((l) =>
      l.split("\t")[1]
    );
    assert.deepEqual(await labelsOf(ctx.output("lmdb")), expected);
    assert.equal(result!.summary!.layout, "tsv");

    const src = join(dir, "gtsrc");
    await fs.mkdir(join(src, "sub"), { recursive: true });
    await Deno.writeFile(join(src, "word_1.jpg"), await realImage(5));
    await Deno.writeFile(join(src, "sub", "a.jpg"), await realImage(6));
    await Deno.writeTextFile(join(src, "gt.txt"), 'word_1.jpg, "Hello World"\nsub/a.jpg  label two\n\nmissing.jpg x\n');
    assert.equal(await detectLayout(src), "gt");
    const g = await stageContext(kind, join(dir, "gt"), {}, { source: src });
    const r = await kind.run(g);
    assert.deepEqual(await labelsOf(g.output("lmdb")), ["Hello World", "label two"]);
    assert.deepEqual(r!.summary!.skipped_by_reason, { missing_image: 1 });
    assert.match((r!.summary!.unreadable as { where: string }[])[0].where, /gt\.txt:4/);
  });
});

Deno.test("import: an unknown layout is a clear error", async () => {
  await withDir(async (dir) => {
    await assert.rejects(detectLayout(dir), /cannot tell the layout: expected data\.mdb \(lmdb\), IMG\/ \+ label\//);
  });
});

Deno.test("import: an LMDB (picked by subdir) is copied with the same checks", async () => {
  await withDir(async (dir) => {
    const testdata = fileURLToPath(new URL("../testdata", import.meta.url));
    const ctx = await stageContext(kind, dir, { subdir: "python_lmdb" }, { source: testdata });
    const result = await kind.run(ctx);
    assert.equal(result!.summary!.layout, "lmdb");
    assert.deepEqual(await labelsOf(ctx.output("lmdb")), ["grey", "RGB", "Café", "42", "Longer-Word!"]);
    assert.deepEqual(result!.summary!.formats, { jpeg: 2, png: 3 });
    const escape = await stageContext(kind, join(dir, "x"), { subdir: "../etc" }, { source: testdata });
    await assert.rejects(kind.run(escape), /escapes the source/);
  });
});

Deno.test("import: `name` names the data set in evaluation (IC13_857); empty names are rejected", async () => {
  const { importParams } = await import("./import.ts");
  const { datasetName } = await import("../training/evaluate_stage.ts");
  const p = importParams.parse({ layout: "real", name: "IC13_857" }, ["stages", "ic13"]);
  assert.equal(p.name, "IC13_857");
  const input = { path: "/c/ab/outputs/lmdb", stageId: "ic13", output: "lmdb", matrix: {}, kind: "import", digest: "" };
  assert.equal(datasetName({ ...input, params: p }), "IC13_857");
  assert.equal(datasetName({ ...input, params: importParams.parse({}, []) }), "ic13");
  assert.throws(() => importParams.parse({ name: "" }, ["stages", "ic13", "params"]), /name/);
});

Deno.test({
  name: `import: offset + limit take a window, so validation and training crops of one folder stay disjoint${
    HAVE_SHARED ? "" : " (SKIPPED: ../shared/data is absent)"
  }`,
  ignore: !HAVE_SHARED,
}, async () => {
  await withDir(async (dir) => {
    const src = join(dir, "src");
    await fs.mkdir(join(src, "IMG"), { recursive: true });
    await fs.mkdir(join(src, "label"), { recursive: true });
    for (let i = 1; i <= 5; i++) {
      await Deno.writeFile(join(src, "IMG", `${i}.jpg`), await realImage(i));
      await Deno.writeTextFile(join(src, "label", `${i}.txt`), `W${i}`);
    }
    const run = async (name: string, params: Record<string, unknown>) => {
      const ctx = await stageContext(kind, join(dir, name), params, { source: src });
      await kind.run(ctx);
      return await labelsOf(ctx.output("lmdb"));
    };
    assert.deepEqual(await run("val", { limit: 2 }), ["W1", "W2"]);
    assert.deepEqual(await run("train", { offset: 2 }), ["W3", "W4", "W5"]);
    assert.deepEqual(await run("window", { offset: 1, limit: 2 }), ["W2", "W3"]);
    // An LMDB source takes the same window.
    const lmdb = join(dir, "train", "outputs", "lmdb");
    const ctx = await stageContext(kind, join(dir, "again"), { layout: "lmdb", offset: 1, limit: 1 }, { source: lmdb });
    await kind.run(ctx);
    assert.deepEqual(await labelsOf(ctx.output("lmdb")), ["W4"]);
  });
});
