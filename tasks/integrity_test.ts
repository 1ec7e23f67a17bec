/**
 * Data that lies (issue 15, class 7) as the stages see it, and a real small run (`import` of an LMDB) killed
 * with SIGKILL at several points, then rerun, verified and collected.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLmdb, DataError, openLmdb } from "../data/lmdb.ts";
import { Cache } from "../pipeline/cache.ts";
import { cli, cliCommand } from "../pipeline/test_helpers.ts";
import { stageContext } from "../testing/stage_ctx.ts";
import importKind from "./import.ts";
import statsKind from "./stats.ts";

const PY_LMDB = fileURLToPath(new URL("../testdata/python_lmdb", import.meta.url));

/** The five real images (JPEG and PNG) of testdata/python_lmdb. */
async function images(): Promise<Uint8Array[]> {
  const r = await openLmdb(PY_LMDB);
  try {
    const out: Uint8Array[] = [];
    for (let i = 1; i <= r.size; i++) {
      const s = r.read(i);
      assert.ok(s.ok);
      out.push(s.sample.image.slice());
    }
    return out;
  } finally {
    await r.close();
  }
}

/** An LMDB of `n` samples whose num-samples says `declared` (a string: it may be anything). */
async function lyingLmdb(path: string, n: number, declared: string | undefined): Promise<void> {
  const imgs = await images();
  const w = await createLmdb(path);
  for (let i = 0; i < n; i++) w.add(imgs[i % imgs.length], `word${i}`);
  if (declared !== undefined) w.putRaw("num-samples", new TextEncoder().encode(declared));
  await w.commit({ writeNumSamples: false });
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "strata-integrity-test-" });
  try {
    await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

Deno.test("class 7: num-samples that lies is a note with counts in stats and import, an error under policy error", async () => {
  await withDir(async (dir) => {
    const big = join(dir, "big");
    await lyingLmdb(big, 10, "100");
    // stats: the count is what is there; the lie is a problem with its numbers.
    const sctx = await stageContext(statsKind, join(dir, "s"), {}, { data: big });
    const sres = await statsKind.run(sctx);
    const md = await Deno.readTextFile(sctx.output("markdown"));
    assert.match(md.split("\n")[0], /^10 samples in /);
    assert.match(md, /\| num_samples_mismatch \| 1 \|/);
    assert.match(md, /num-samples says 100, but the samples end at 10/);
    assert.ok(sres!.notes!.some((n) => /num_samples_mismatch: 1 \(num-samples says 100/.test(n)), sres!.notes!.join());
    // import (policy skip): writes the 10 there are and says so; nothing counted as a skipped sample.
    const ictx = await stageContext(importKind, join(dir, "i"), { verify_images: false }, { source: big });
    const ires = await importKind.run(ictx);
    assert.equal(ires!.summary!.written, 10);
    assert.equal(ires!.summary!.skipped, 0);
    assert.equal(ires!.summary!.declared_num_samples, 100);
    assert.deepEqual(ires!.notes, [
      "import: num-samples says 100, but the samples end at 10: reading 10; wrote 10 samples",
    ]);
    // policy error (the default of every reader): refused at open, not at sample 11.
    await assert.rejects(
      openLmdb(big),
      (e: Error) => e instanceof DataError && /num-samples says 100, but the samples end at 10/.test(e.message),
    );
    // Smaller than the data: the samples beyond it are not silently ignored.
    const small = join(dir, "small");
    await lyingLmdb(small, 10, "4");
    const i2 = await stageContext(importKind, join(dir, "i2"), { verify_images: false }, { source: small });
    const r2 = await importKind.run(i2);
    assert.equal(r2!.summary!.written, 10);
    assert.match(r2!.notes![0], /num-samples says 4, but the samples go on to 10/);
    // Not a number, or missing: a note of its own, not "1 skipped sample".
    for (const [declared, said] of [["ten", /num-samples is not a number: "ten"/], [undefined, /no num-samples key/]]) {
      const p = join(dir, `nan${declared ?? ""}`);
      await lyingLmdb(p, 3, declared as string | undefined);
      const c = await stageContext(importKind, join(dir, `c${declared ?? ""}`), { verify_images: false }, {
        source: p,
      });
      const r = await importKind.run(c);
      assert.equal(r!.summary!.skipped, 0);
      assert.equal(r!.summary!.written, 3);
      assert.match(r!.notes![0], said as RegExp);
      assert.match(r!.notes![0], /size inferred from the label keys: 3/);
    }
  });
});

Deno.test("class 7: 1.jpg beside 1.png, and labels whose images leave the source folder, are counted, not absorbed", async () => {
  await withDir(async (dir) => {
    const [jpg, , , , png] = await images();
    const src = join(dir, "real");
    await fs.mkdir(join(src, "IMG"), { recursive: true });
    await fs.mkdir(join(src, "label"), { recursive: true });
    await Deno.writeFile(join(src, "IMG", "1.jpg"), jpg);
    await Deno.writeFile(join(src, "IMG", "1.png"), png);
    await Deno.writeTextFile(join(src, "label", "1.txt"), "which");
    await Deno.writeFile(join(src, "IMG", "2.jpg"), jpg);
    await Deno.writeTextFile(join(src, "label", "2.txt"), "fine");
    const ctx = await stageContext(importKind, join(dir, "o1"), {}, { source: src });
    const r = await importKind.run(ctx);
    assert.equal(r!.summary!.written, 1);
    assert.deepEqual(r!.summary!.skipped_by_reason, { ambiguous_image: 2 });
    assert.match(r!.notes![0], /skipped 2 of 3 samples \(ambiguous_image: 2\)/);
    const unreadable = r!.summary!.unreadable as { reason: string }[];
    assert.match(unreadable[0].reason, /IMG\/1\.jpg and IMG\/1\.png share the number 1/);
    const strict = await stageContext(importKind, join(dir, "o2"), { policy: "error" }, { source: src });
    await assert.rejects(importKind.run(strict), /share the number 1; label\/1\.txt cannot tell which it labels/);

    // A labels file pointing outside its folder: those samples are not read (their bytes are not in the digest).
    const tsv = join(dir, "tsv");
    await fs.mkdir(tsv);
    await Deno.writeFile(join(dir, "outside.jpg"), jpg);
    await Deno.writeFile(join(tsv, "in.jpg"), jpg);
    await Deno.writeTextFile(
      join(tsv, "labels.tsv"),
      `in.jpg\tinside\n../outside.jpg\tescape\n${dir}/outside.jpg\tabs\n`,
    );
    const t = await stageContext(importKind, join(dir, "o3"), {}, { source: tsv });
    const tr = await importKind.run(t);
    assert.equal(tr!.summary!.written, 1);
    assert.deepEqual(tr!.summary!.skipped_by_reason, { outside_source: 2 });
    const s = await stageContext(statsKind, join(dir, "o4"), {}, { data: tsv });
    await statsKind.run(s);
    assert.match(await Deno.readTextFile(s.output("markdown")), /\| outside_source \| 2 \|/);
    const lf = await stageContext(importKind, join(dir, "o5"), { labels_file: "../labels.tsv" }, { source: tsv });
    await Deno.writeTextFile(join(dir, "labels.tsv"), "in.jpg\tx\n");
    await assert.rejects(importKind.run(lf), /the labels file is outside the source folder/);
  });
});

Deno.test("kill -9 of a real small run (import) at several points: the rerun completes, --verify passes, gc cleans", async () => {
  await withDir(async (root) => {
    await Deno.writeTextFile(join(root, "deno.json"), "{}\n");
    const src = join(root, "src");
    await lyingLmdb(src, 1500, "1500");
    await Deno.writeTextFile(
      join(root, "e.yaml"),
      "name: killed\nstages:\n  imp: { kind: import, params: { layout: lmdb }, inputs: { source: path:src } }\n" +
        "  st: { kind: stats, inputs: { data: imp.lmdb } }\n",
    );
    const tmpd = join(root, "tmpd");
    await fs.mkdir(tmpd);
    const env = { TMPDIR: tmpd };
    const cacheDir = join(root, ".strata/cache");
    const exists = (p: string) => fs.stat(p).then(() => true, () => false);
    const shadows = async () => (await fs.readdir(tmpd)).filter((n) => n.startsWith("strata-lmdb-"));
    const tmpDirs = async () => (await exists(join(cacheDir, "tmp"))) ? await fs.readdir(join(cacheDir, "tmp")) : [];
    // Kill points: as soon as the run lock exists; when the import's LMDB reader is open; when its writer has
    // begun its temporary LMDB in the stage's temp folder.
    const points: [string, () => Promise<boolean>][] = [
      ["run started", () => exists(join(cacheDir, "run.lock"))],
      ["reader open", async () => {
        for (const n of await shadows()) if (await exists(join(tmpd, n, "data.mdb"))) return true;
        return false;
      }],
      ["writer begun", async () => {
        for (const t of await tmpDirs()) {
          const out = join(cacheDir, "tmp", t, "outputs", "lmdb");
          if ((await exists(out)) && (await fs.readdir(out)).some((n) => n.startsWith(".lmdb.partial-"))) return true;
        }
        return false;
      }],
    ];
    let leftovers = 0;
    for (const [name, reached] of points) {
      await fs.rm(join(cacheDir, "run.lock"), { force: true });
      const child = cliCommand(root, ["run", "e.yaml"], [], env).spawn();
      let done = false;
      child.status.then(() => done = true);
      while (!done && !(await reached())) await new Promise((r) => setTimeout(r, 5));
      if (!done) child.kill("SIGKILL");
      await child.output();
      // Never half an entry: what is in the cache is complete and intact.
      const cache = new Cache(cacheDir);
      for (const key of cache.entries()) assert.equal(await cache.verify(key), undefined, `${name}: ${key}`);
      leftovers += (await tmpDirs()).length + (await shadows()).length;
    }
    assert.ok(leftovers > 0, "no kill landed inside a stage");
    // gc removes the temp folders and the private LMDB folders of the killed processes.
    let r = await cli(root, ["gc"], [], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await tmpDirs(), []);
    assert.deepEqual(await shadows(), []);
    // The rerun completes; --verify re-hashes everything and finds it intact.
    r = await cli(root, ["run", "e.yaml"], [], env);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(root, ["run", "e.yaml", "--verify"], [], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /cached\s+imp/);
    assert.match(r.stderr, /cached\s+st/);
    assert.doesNotMatch(r.stderr, /damaged/);
    const lock = JSON.parse(await Deno.readTextFile(join(root, "results/killed/strata.lock")));
    assert.equal(lock.stages.imp.summary.written, 1500);
    assert.equal(lock.stages.st.summary.count, 1500);
    assert.deepEqual(await shadows(), []); // closed readers remove their folders
    // SIGTERM while the import reads: stopped like Ctrl-C, nothing left behind, exit status 143.
    const child = cliCommand(root, ["run", "e.yaml", "--force", "imp"], [], env).spawn();
    let done = false;
    child.status.then(() => done = true);
    while (!done && !(await points[1][1]())) await new Promise((r) => setTimeout(r, 5));
    assert.ok(!done, "the forced import finished before it could be stopped");
    child.kill("SIGTERM");
    const out = await child.output();
    assert.equal(out.code, 143, new TextDecoder().decode(out.stderr));
    assert.deepEqual(await shadows(), []);
    assert.deepEqual(await tmpDirs(), []);
  });
});

Deno.test("class 7: evaluate says how many samples it could not score (labels longer than max_length)", async () => {
  await import("../training/test_family.ts");
  const { default: trainKind } = await import("./train.ts");
  const { default: evaluateKind } = await import("./evaluate.ts");
  const { fakeContext, makeDemoLmdb, resolved } = await import("../training/test_context.ts");
  await withDir(async (dir) => {
    const demo = join(dir, "demo");
    await makeDemoLmdb(demo);
    const trainParams = trainKind.params.parse({
      model: "strata_test_tiny",
      architecture: { height: 8, width: 32 },
      data: { image: { height: 8, width: 32 }, augment: { enabled: false } },
      batch_size: 3,
      steps: 1,
      backend: "cpu",
    }, []);
    await trainKind.run(fakeContext({
      params: trainParams,
      inputs: { train: [resolved(demo, "demo")] },
      workDir: join(dir, "t"),
      scratch: join(dir, "s"),
    }));
    const imgs = await images();
    const evalSet = join(dir, "eval");
    const w = await createLmdb(evalSet);
    for (const [i, img] of imgs.entries()) w.add(img, i === 2 ? "x".repeat(30) : `word${i}`);
    await w.commit();
    const params = evaluateKind.params.parse({ batch_size: 4, backend: "cpu", bad_input: "skip" }, []);
    const ctx = fakeContext({
      params,
      inputs: {
        model: [{ ...resolved(join(dir, "t", "outputs", "model"), "train"), output: "model", kind: "train" }],
        datasets: [resolved(evalSet, "long")],
      },
      workDir: join(dir, "e"),
      scratch: join(dir, "es"),
    });
    const r = await evaluateKind.run(ctx);
    const long = (r!.summary!.datasets as Record<string, { samples: number; not_scored?: Record<string, number> }>)
      .long;
    assert.equal(long.samples, 4);
    assert.deepEqual(long.not_scored, { too_long: 1 });
    // In metrics.json too, and the report turns it into a warning in README.md.
    const metrics = JSON.parse(await Deno.readTextFile(ctx.output("metrics")));
    assert.deepEqual(metrics.datasets[0].not_scored, { too_long: 1 });
    const { parseMetrics } = await import("../report/model.ts");
    assert.ok(
      parseMetrics(metrics, "metrics.json").warnings.includes("long: 1 samples not scored (too_long: 1)"),
    );
    assert.ok(
      r!.notes!.some((n) =>
        /long: 1 of 5 samples not scored \(too_long: 1\); too_long = label longer than the model's max_length 25/
          .test(n)
      ),
      r!.notes!.join("\n"),
    );
  });
});

Deno.test("class 4: synth counts are bounded; import checks free space for its copy, naming the path", async () => {
  const { default: synthKind } = await import("./synth.ts");
  for (const count of [1e300, 50_000_001]) {
    assert.throws(() => synthKind.params.parse({ count }, []), /count: expected integer ≥ 1 ≤ 50000000/);
  }
  assert.equal((synthKind.params.parse({ count: 50_000_000 }, []) as { count: number }).count, 50_000_000);
  await withDir(async (dir) => {
    const src = join(dir, "src");
    await lyingLmdb(src, 3, "3");
    const ctx = await stageContext(importKind, join(dir, "i"), { verify_images: false }, { source: src });
    const before = Deno.env.get("STRATA_MIN_FREE_MB");
    Deno.env.set("STRATA_MIN_FREE_MB", String(2 ** 40)); // a reserve of 1 EiB: no disk has it
    try {
      await assert.rejects(
        importKind.run(ctx),
        new RegExp(`import ${src}: not enough free disk space at ${ctx.output("lmdb")}: about .* needed`),
      );
    } finally {
      if (before === undefined) Deno.env.delete("STRATA_MIN_FREE_MB");
      else Deno.env.set("STRATA_MIN_FREE_MB", before);
    }
  });
});
