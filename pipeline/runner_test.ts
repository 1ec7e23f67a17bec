import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Cache } from "./cache.ts";
import { gc, GcLockError } from "./gc.ts";
import { readLock } from "./provenance.ts";
import { any, integer, object } from "./schema.ts";
import type { StageKind } from "./stage_kind.ts";
import { keyOfStage, runIn, stateOf, tempProject, write } from "./test_helpers.ts";

const runs: Record<string, number> = {};
const env = { lib: "1.0" };

function gen(module = import.meta.url, kind = "r_gen"): StageKind<unknown> {
  return {
    kind,
    version: 1,
    description: "writes n",
    params: object({ n: integer({ default: 1 }), extra: any({ optional: true }) }),
    inputs: { src: { description: "external", optional: true } },
    outputs: { out: { description: "n", type: "file" } },
    module,
    environment: () => ({ lib: env.lib }),
    async run(ctx) {
      const p = ctx.params as { n: number };
      runs[ctx.stageId] = (runs[ctx.stageId] ?? 0) + 1;
      const src = ctx.optionalInput("src");
      const extra = src ? await Deno.readTextFile(src) : "";
      ctx.log(`writing ${p.n}`);
      await Deno.writeTextFile(ctx.output("out"), `${p.n}${extra}\n`);
      return { summary: { n: p.n }, notes: [`wrote ${p.n}`] };
    },
  } as StageKind<unknown>;
}

const sum: StageKind<unknown> = {
  kind: "r_sum",
  version: 1,
  description: "sums",
  params: object({}),
  inputs: { xs: { description: "numbers", many: true }, opt: { description: "optional", optional: true } },
  outputs: { report: { description: "dir", type: "dir" } },
  module: import.meta.url,
  async run(ctx) {
    runs[ctx.stageId] = (runs[ctx.stageId] ?? 0) + 1;
    let total = 0;
    for (const i of ctx.inputs.xs) total += parseInt(await Deno.readTextFile(i.path));
    const lines = ctx.inputs.xs.map((i) => `${i.stageId} ${JSON.stringify(i.matrix)} ${i.params.n}`);
    await Deno.writeTextFile(join(ctx.output("report"), "README.md"), `# total ${total}\n${lines.join("\n")}\n`);
    await Deno.mkdir(join(ctx.output("report"), "sub"));
    await Deno.writeTextFile(join(ctx.output("report"), "sub", "x.txt"), "x");
  },
};

Deno.test("keys: stable under YAML reformatting, changed by params, input, env and code (one character)", async () => {
  const root = tempProject();
  write(root, "helper.ts", "export const h = 1;\n");
  const mod = write(root, "kindmod.ts", 'import { h } from "./helper.ts";\nexport const k = h;\n');
  const kind = gen(pathToFileURL(mod).href);
  write(root, "data/src.txt", "a");
  write(
    root,
    "e.yaml",
    'stages:\n  g:\n    kind: r_gen\n    params: { n: 1, extra: { b: 1, a: 2.0 } }\n    inputs: { src: "path:data/src.txt" }\n',
  );
  const r1 = await runIn(root, "e.yaml", [kind]);
  const k1 = keyOfStage(r1, "g");
  assert.equal(stateOf(r1, "g"), "ran");
  // Reformatted YAML, reordered keys, 2.0 written as 2: same key, cached.
  write(
    root,
    "e.yaml",
    "stages:\n  g:\n    inputs:\n      src: path:data/src.txt\n    params:\n      extra: {a: 2, b: 1}\n      n: 1\n    kind: r_gen\n",
  );
  const r2 = await runIn(root, "e.yaml", [kind]);
  assert.equal(keyOfStage(r2, "g"), k1);
  assert.equal(stateOf(r2, "g"), "cached");

  const status = async () => (await runIn(root, "e.yaml", [kind], { dryRun: true })).outcomes[0];
  // params
  const r3 = await runIn(root, "e.yaml", [kind], { set: ["stages.g.params.n=2"], dryRun: true });
  assert.notEqual(keyOfStage(r3, "g"), k1);
  assert.deepEqual(r3.outcomes[0].reasons, ["params changed: params.n: 1 → 2"]);
  // kind version
  const bumped = await runIn(root, "e.yaml", [{ ...kind, version: 2 } as StageKind<unknown>], { dryRun: true });
  assert.notEqual(keyOfStage(bumped, "g"), k1);
  assert.deepEqual(bumped.outcomes[0].reasons, ["kind version 1 → 2"]);
  // input content
  write(root, "data/src.txt", "b");
  let s = await status();
  assert.notEqual(s.key, k1);
  assert.equal(s.state, "stale");
  assert.deepEqual(s.reasons, ["input src changed: external path content"]);
  write(root, "data/src.txt", "a");
  assert.equal((await status()).state, "cached");
  // env
  env.lib = "2.0";
  s = await status();
  assert.deepEqual(s.reasons, ['environment changed: env.lib: "1.0" → "2.0"']);
  env.lib = "1.0";
  // code: one character in a module the kind imports
  write(root, "helper.ts", "export const h = 2;\n");
  s = await status();
  assert.notEqual(s.key, k1);
  assert.deepEqual(s.reasons, ["code changed: helper.ts"]);
  write(root, "helper.ts", "export const h = 1;\n");
  s = await status();
  assert.equal(s.key, k1);
  assert.equal(s.state, "cached");
  Deno.removeSync(root, { recursive: true });
});

Deno.test("matrix fan-in, publish, provenance lock, and gc", async () => {
  const root = tempProject();
  write(
    root,
    "exp/e.yaml",
    `name: fan
stages:
  g:
    kind: r_gen
    matrix: { n: [1, 2, 3] }
    params: { n: "\${matrix.n}" }
    publish: results/fan/numbers
  total:
    kind: r_sum
    publish: results/fan/report
    inputs: { xs: g.out }
`,
  );
  const kinds = [gen(), sum];
  const r = await runIn(root, "exp/e.yaml", kinds, { jobs: 2 });
  assert.ok(r.ok);
  const readme = Deno.readTextFileSync(join(root, "results/fan/report/README.md"));
  assert.match(readme, /^# total 6\ng\[n=1\] \{"n":1\} 1\n/);
  assert.equal(Deno.readTextFileSync(join(root, "results/fan/report/sub/x.txt")), "x");
  assert.equal(Deno.readTextFileSync(join(root, "results/fan/numbers/n=2/out")), "2\n");
  const lock = readLock(join(root, "results/fan/strata.lock"))!;
  assert.equal(lock.experiment, "fan");
  assert.deepEqual(Object.keys(lock.stages).sort(), ["g[n=1]", "g[n=2]", "g[n=3]", "total"]);
  assert.deepEqual(lock.stages["g[n=2]"].summary, { n: 2 });
  assert.equal(lock.stages["g[n=2]"].components?.env.lib, "1.0");
  assert.match(lock.stages.total.outputs!.report, /^sha256:[0-9a-f]{64}$/);
  assert.ok(lock.environment.deno && lock.environment.cpu && lock.environment.os);
  // Published again after a cached run, even if the published copy was removed.
  Deno.removeSync(join(root, "results/fan/report"), { recursive: true });
  const again = await runIn(root, "exp/e.yaml", kinds);
  assert.ok(again.outcomes.every((o) => o.state === "cached"));
  assert.ok(Deno.statSync(join(root, "results/fan/report/README.md")).isFile);

  // gc: a changed param leaves the old entry unreferenced once the lock is rewritten.
  await runIn(root, "exp/e.yaml", kinds, { set: ["stages.g.params.n=7"] });
  const cacheDir = join(root, ".strata/cache");
  const before = [...new Cache(cacheDir).entries()].length;
  assert.equal(before, 4 + 2);
  const dry = await gc(root, cacheDir, true);
  assert.equal(dry.removed.length, 4);
  assert.ok(dry.bytesFreed > 0);
  assert.equal([...new Cache(cacheDir).entries()].length, before);
  const real = await gc(root, cacheDir, false);
  assert.equal(real.bytesFreed, dry.bytesFreed);
  assert.equal([...new Cache(cacheDir).entries()].length, 2);
  const after = await runIn(root, "exp/e.yaml", kinds, { set: ["stages.g.params.n=7"] });
  assert.ok(after.outcomes.every((o) => o.state === "cached"));
  Deno.removeSync(root, { recursive: true });
});

Deno.test("optional inputs are dropped; absent required inputs skip the stage and its dependents", async () => {
  const root = tempProject();
  write(
    root,
    "e.yaml",
    `stages:
  needs_data: { kind: r_gen, inputs: { src: "path:absent.txt" } }
  maybe_data: { kind: r_gen, params: { n: 2 }, inputs: { src: "path:absent.txt?" } }
  downstream: { kind: r_sum, inputs: { xs: needs_data.out } }
  tolerant: { kind: r_sum, inputs: { xs: [maybe_data.out, needs_data.out?] } }
  skipper: { kind: r_skip }
  after_skipper: { kind: r_sum, inputs: { xs: [maybe_data.out], opt: skipper.out? } }
`,
  );
  const skipper: StageKind<unknown> = { ...gen(), kind: "r_skip", skip: () => "no data here" } as StageKind<unknown>;
  const r = await runIn(root, "e.yaml", [gen(), sum, skipper]);
  assert.ok(r.ok);
  assert.equal(stateOf(r, "needs_data"), "skipped");
  assert.match(
    r.outcomes.find((o) => o.id === "needs_data")!.reasons[0],
    /required input src \(path:absent.txt\) does not exist/,
  );
  assert.equal(stateOf(r, "downstream"), "skipped");
  assert.match(r.outcomes.find((o) => o.id === "downstream")!.reasons[0], /needs_data was skipped/);
  assert.equal(stateOf(r, "maybe_data"), "ran");
  assert.equal(stateOf(r, "tolerant"), "ran");
  assert.equal(stateOf(r, "skipper"), "skipped");
  // Same kind and inputs as `tolerant` once the optional inputs are dropped: the same key, so a cache hit.
  assert.equal(stateOf(r, "after_skipper"), "cached");
  assert.equal(keyOfStage(r, "after_skipper"), keyOfStage(r, "tolerant"));
  assert.ok(r.lines.some((l) => l.includes("skip") && l.includes("no data here")));
  const lock = readLock(join(root, "results/e/strata.lock"))!;
  assert.match(lock.stages.needs_data.skipped!, /does not exist/);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("failures block dependents and leave no entry but keep scratch; --force, --verify, --only", async () => {
  const root = tempProject();
  let fail = true;
  const flaky: StageKind<unknown> = {
    ...gen(),
    kind: "r_flaky",
    async run(ctx) {
      await Deno.writeTextFile(join(ctx.scratch, "state"), "resumable");
      await Deno.writeTextFile(ctx.output("out"), "1\n");
      if (fail) throw new Error("boom");
    },
  } as StageKind<unknown>;
  write(
    root,
    "e.yaml",
    "stages:\n  a: { kind: r_flaky }\n  b: { kind: r_sum, inputs: { xs: a.out } }\n  c: { kind: r_gen }\n",
  );
  const kinds = [flaky, sum, gen()];
  const r1 = await runIn(root, "e.yaml", kinds);
  assert.equal(r1.ok, false);
  assert.equal(stateOf(r1, "a"), "failed");
  assert.equal(stateOf(r1, "b"), "blocked");
  assert.equal(stateOf(r1, "c"), "ran");
  const key = keyOfStage(r1, "a");
  const cache = new Cache(join(root, ".strata/cache"));
  assert.equal(cache.has(key), false);
  assert.equal(Deno.readTextFileSync(join(cache.scratchDir(key), "state")), "resumable");
  assert.ok(r1.lines.some((l) => /FAILED\s+a .*boom/.test(l)));
  fail = false;
  const r2 = await runIn(root, "e.yaml", kinds);
  assert.ok(r2.ok);
  assert.equal(stateOf(r2, "a"), "ran");
  assert.ok(cache.has(key));
  assert.throws(() => Deno.statSync(cache.scratchDir(key)));
  assert.match(Deno.readTextFileSync(join(cache.entryDir(key), "log.txt")), /key [0-9a-f]{64}/);
  for (const f of ["manifest.json", "summary.json", "timings.json", "outputs/out"]) {
    assert.ok(Deno.statSync(join(cache.entryDir(key), f)).isFile, f);
  }

  // --force recomputes one stage; --only limits the run to a stage and what it needs.
  const before = runs["c"];
  const r3 = await runIn(root, "e.yaml", kinds, { force: ["c"], only: ["c"] });
  assert.deepEqual(r3.outcomes.map((o) => [o.id, o.state]), [["c", "ran"]]);
  assert.equal(runs["c"], before + 1);
  const r4 = await runIn(root, "e.yaml", kinds, { only: ["b"] });
  assert.deepEqual(r4.outcomes.map((o) => [o.id, o.state]), [["a", "cached"], ["b", "cached"]]);

  // --verify finds a corrupted entry (same size, same mtime: invisible to the cheap check) and recomputes it.
  const cKey = keyOfStage(r3, "c");
  tamper(join(cache.entryDir(cKey), "outputs/out"));
  const r5 = await runIn(root, "e.yaml", kinds, { only: ["c"] });
  assert.equal(stateOf(r5, "c"), "cached");
  const r6 = await runIn(root, "e.yaml", kinds, { only: ["c"], verify: true });
  assert.equal(stateOf(r6, "c"), "ran");
  assert.ok(r6.lines.some((l) => l.includes("damaged cache entry for c")));
  assert.equal(Deno.readTextFileSync(join(cache.entryDir(cKey), "outputs/out")), "1\n");
  Deno.removeSync(root, { recursive: true });
});

/** Flips the first byte of a file, keeping its size and mtime (what only a full re-hash can see). */
function tamper(path: string): void {
  const st = Deno.statSync(path);
  const bytes = Deno.readFileSync(path);
  bytes[0] ^= 0x01;
  Deno.chmodSync(path, 0o644);
  Deno.writeFileSync(path, bytes);
  Deno.utimeSync(path, st.atime ?? st.mtime!, st.mtime!);
}

Deno.test("class 1: a damaged cached output never feeds a downstream stage, with or without --verify", async () => {
  const root = tempProject();
  write(
    root,
    "e.yaml",
    "stages:\n  g: { kind: r_gen, params: { n: 4 } }\n  s: { kind: r_sum, inputs: { xs: g.out } }\n",
  );
  const kinds = [gen(), sum];
  const cache = new Cache(join(root, ".strata/cache"));
  const r1 = await runIn(root, "e.yaml", kinds);
  assert.ok(r1.ok);
  const g = join(cache.entryDir(keyOfStage(r1, "g")), "outputs/out");
  const sReadme = () => Deno.readTextFileSync(join(cache.entryDir(keyOfStage(r1, "s")), "outputs/report/README.md"));

  // A deleted output file is seen without --verify: g is re-derived, and s (computed from it) with it.
  Deno.removeSync(g);
  const r2 = await runIn(root, "e.yaml", kinds);
  assert.deepEqual(r2.outcomes.map((o) => [o.id, o.state]), [["g", "ran"], ["s", "ran"]]);
  assert.ok(
    r2.lines.some((l) => /damaged cache entry for g \(output file out is missing\)/.test(l)),
    r2.lines.join("\n"),
  );
  assert.ok(r2.lines.some((l) => /recompute s: upstream g was re-derived/.test(l)));
  // A rewritten file (new mtime) is re-hashed without --verify.
  Deno.writeTextFileSync(g, "9\n");
  const r3 = await runIn(root, "e.yaml", kinds);
  assert.deepEqual(r3.outcomes.map((o) => [o.id, o.state]), [["g", "ran"], ["s", "ran"]]);
  // Touched but intact: stays cached (and the new mtime is remembered).
  Deno.utimeSync(g, new Date(), new Date(Date.now() - 60_000));
  const r4 = await runIn(root, "e.yaml", kinds);
  assert.deepEqual(r4.outcomes.map((o) => [o.id, o.state]), [["g", "cached"], ["s", "cached"]]);

  // Corrupt bytes the cheap check cannot see, consumed by a forced s: s read the bad bytes under the good key.
  tamper(g);
  const r5 = await runIn(root, "e.yaml", kinds, { force: ["s"] });
  assert.equal(stateOf(r5, "g"), "cached");
  assert.match(sReadme(), /^# total 5\n/); // "5" read instead of "4"
  // --verify re-derives g, and with it s, which was computed from the bad bytes.
  const r6 = await runIn(root, "e.yaml", kinds, { verify: true });
  assert.deepEqual(r6.outcomes.map((o) => [o.id, o.state]), [["g", "ran"], ["s", "ran"]]);
  assert.match(sReadme(), /^# total 4\n/);
  // Across runs: g re-derived by `--verify --only g` (s not in that run); the next run recomputes s, once.
  tamper(g);
  await runIn(root, "e.yaml", kinds, { force: ["s"] }); // s computed from the bad bytes again
  assert.match(sReadme(), /^# total 5\n/);
  const r7 = await runIn(root, "e.yaml", kinds, { verify: true, only: ["g"] });
  assert.deepEqual(r7.outcomes.map((o) => [o.id, o.state]), [["g", "ran"]]);
  const r8 = await runIn(root, "e.yaml", kinds);
  assert.deepEqual(r8.outcomes.map((o) => [o.id, o.state]), [["g", "cached"], ["s", "ran"]]);
  assert.ok(r8.lines.some((l) => /damaged cache entry for s \(made from g before it was re-derived/.test(l)));
  assert.match(sReadme(), /^# total 4\n/);
  const r9 = await runIn(root, "e.yaml", kinds);
  assert.deepEqual(r9.outcomes.map((o) => [o.id, o.state]), [["g", "cached"], ["s", "cached"]]);
  // A status walk reports a missing output as stale.
  Deno.removeSync(g);
  const st = await runIn(root, "e.yaml", kinds, { dryRun: true });
  assert.equal(stateOf(st, "g"), "stale");
  assert.match(st.outcomes[0].reasons[0], /damaged cache entry: output file out is missing/);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("--jobs runs independent stages together; an exclusive resource is never shared", async () => {
  const root = tempProject();
  let running = 0;
  let maxRunning = 0;
  let onAccel = 0;
  let maxAccel = 0;
  const slow = (kind: string, resources: string[]): StageKind<unknown> =>
    ({
      ...gen(),
      kind,
      resources,
      async run(ctx) {
        running++;
        if (resources.length) onAccel++;
        maxRunning = Math.max(maxRunning, running);
        maxAccel = Math.max(maxAccel, onAccel);
        await new Promise((r) => setTimeout(r, 40));
        await Deno.writeTextFile(ctx.output("out"), "1\n");
        running--;
        if (resources.length) onAccel--;
      },
    }) as StageKind<unknown>;
  write(
    root,
    "e.yaml",
    'stages:\n  cpu: { kind: j_cpu, matrix: { n: [1, 2, 3, 4] }, params: { n: "${matrix.n}" } }\n' +
      '  gpu: { kind: j_gpu, matrix: { n: [1, 2, 3] }, params: { n: "${matrix.n}" } }\n',
  );
  const r = await runIn(root, "e.yaml", [slow("j_cpu", []), slow("j_gpu", ["accelerator"])], { jobs: 3 });
  assert.ok(r.ok);
  assert.equal(maxAccel, 1);
  assert.ok(maxRunning > 1 && maxRunning <= 3, `max running ${maxRunning}`);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("class 2: publishing stays inside results/ and never clobbers another experiment", async () => {
  const root = tempProject();
  const kinds = [gen(), sum];
  write(root, "README.md", "the project's own readme\n");
  write(root, "victim.txt", "keep me\n");
  const outside = Deno.makeTempDirSync({ prefix: "strata_outside_" });
  write(outside, "x.txt", "outside\n");
  // Paths that leave results/ are refused when the experiment is read, naming the file and line.
  for (
    const [publish, why] of [[".", "\\. or \\.\\. segments"], ["../..", "\\.\\. segments"], [outside, "absolute"], [
      "results",
      "not inside results/",
    ], ["results/../README.md", "\\.\\. segments"]]
  ) {
    write(
      root,
      "bad.yaml",
      `stages:\n  t:\n    kind: r_sum\n    publish: ${publish}\n    inputs: { xs: g.out }\n  g: { kind: r_gen }\n`,
    );
    await assert.rejects(() => runIn(root, "bad.yaml", kinds), new RegExp(`bad\\.yaml:4:\\d+: .*publish: .*${why}`));
  }
  // A matrix value cannot smuggle `..` into the per-instance folder.
  write(root, "mx.yaml", 'stages:\n  g: { kind: r_gen, matrix: { x: ["../../.."] }, publish: results/mx }\n');
  await assert.rejects(() => runIn(root, "mx.yaml", kinds), /publish: .*\.\. segments/);
  assert.equal(Deno.readTextFileSync(join(root, "README.md")), "the project's own readme\n");

  // A crafted record cannot make a run delete files outside its folder.
  write(root, "a.yaml", "name: alpha\nstages:\n  g: { kind: r_gen, publish: results/alpha }\n");
  write(
    root,
    "results/alpha/.strata-published.json",
    JSON.stringify({ g: ["../../victim.txt", join(outside, "x.txt"), "../../README.md", "old.txt"] }),
  );
  write(root, "results/alpha/old.txt", "stale\n");
  const lines: string[] = [];
  const ra = await runIn(root, "a.yaml", kinds, { say: (l) => lines.push(l) });
  assert.ok(ra.ok);
  assert.equal(Deno.readTextFileSync(join(root, "victim.txt")), "keep me\n");
  assert.equal(Deno.readTextFileSync(join(root, "README.md")), "the project's own readme\n");
  assert.equal(Deno.readTextFileSync(join(outside, "x.txt")), "outside\n");
  assert.throws(() => Deno.statSync(join(root, "results/alpha/old.txt"))); // a safe, recorded path is still pruned
  assert.ok(lines.some((l) => /ignoring 3 unsafe path\(s\)/.test(l)), lines.join("\n"));
  const record = JSON.parse(Deno.readTextFileSync(join(root, "results/alpha/.strata-published.json")));
  assert.deepEqual(record, { version: 2, experiment: "alpha", file: "a.yaml", stages: { g: ["out"] } });

  // Another file with the same name: refused, naming the owner; alpha's report and lock untouched.
  const lockBefore = Deno.readTextFileSync(join(root, "results/alpha/strata.lock"));
  write(root, "other/a.yaml", "name: alpha\nstages:\n  g: { kind: r_gen, params: { n: 5 }, publish: results/alpha }\n");
  await assert.rejects(
    () => runIn(root, "other/a.yaml", kinds),
    /results\/alpha belongs to experiment "alpha" \(a\.yaml\), not to other\/a\.yaml: two experiments share the name "alpha"/,
  );
  assert.equal(Deno.readTextFileSync(join(root, "results/alpha/strata.lock")), lockBefore);
  assert.equal(Deno.readTextFileSync(join(root, "results/alpha/out")), "1\n");
  // Another experiment publishing into alpha's folder, or into a folder alpha published to: refused.
  write(root, "b.yaml", "name: beta\nstages:\n  g: { kind: r_gen, params: { n: 6 }, publish: results/alpha/sub }\n");
  await assert.rejects(() => runIn(root, "b.yaml", kinds), /results\/alpha, which belongs to experiment "alpha"/);
  write(root, "c.yaml", "name: gamma\nstages:\n  g: { kind: r_gen, publish: results/shared }\n");
  assert.ok((await runIn(root, "c.yaml", kinds)).ok);
  write(root, "d.yaml", "name: delta\nstages:\n  g: { kind: r_gen, params: { n: 7 }, publish: results/shared }\n");
  await assert.rejects(
    () => runIn(root, "d.yaml", kinds),
    /results\/shared holds files published by experiment "gamma"/,
  );
  assert.equal(Deno.readTextFileSync(join(root, "results/shared/out")), "1\n");
  // gc still sees alpha's lock: its entry survives.
  assert.equal((await gc(root, join(root, ".strata/cache"), true)).kept, 1);
  Deno.removeSync(root, { recursive: true });
  Deno.removeSync(outside, { recursive: true });
});

Deno.test("class 3: gc never deletes what a lock it cannot read refers to; --force proceeds", async () => {
  const root = tempProject();
  const kinds = [gen(), sum];
  write(root, "a.yaml", "name: alpha\nstages:\n  g: { kind: r_gen, params: { n: 2 } }\n");
  write(root, "b.yaml", "name: beta\nstages:\n  g: { kind: r_gen, params: { n: 3 } }\n");
  assert.ok((await runIn(root, "a.yaml", kinds)).ok);
  assert.ok((await runIn(root, "b.yaml", kinds)).ok);
  const cacheDir = join(root, ".strata/cache");
  const count = () => [...new Cache(cacheDir).entries()].length;
  assert.equal(count(), 2);
  const lockA = join(root, "results/alpha/strata.lock");
  const good = Deno.readTextFileSync(lockA);
  // Truncated: gc (even --dry-run) stops and names the file; nothing is removed.
  Deno.writeTextFileSync(lockA, good.slice(0, good.length / 2));
  for (const dryRun of [true, false]) {
    await assert.rejects(
      () => gc(root, cacheDir, { dryRun }),
      (e: Error) =>
        e instanceof GcLockError && /results\/alpha\/strata\.lock: not valid JSON \(truncated\?\)/.test(e.message),
    );
  }
  assert.equal(count(), 2);
  // Foreign (another experiment's lock copied in) and malformed keys: the same.
  Deno.writeTextFileSync(lockA, Deno.readTextFileSync(join(root, "results/beta/strata.lock")));
  await assert.rejects(() => gc(root, cacheDir, { dryRun: true }), /foreign: it is the lock of experiment "beta"/);
  Deno.writeTextFileSync(lockA, JSON.stringify({ version: 1, experiment: "alpha", stages: { g: { key: "../x" } } }));
  await assert.rejects(() => gc(root, cacheDir, { dryRun: true }), /stage g: malformed key/);
  // --force proceeds (alpha's entry is then unprotected) and says what it ignored.
  const forced = await gc(root, cacheDir, { force: true });
  assert.equal(forced.removed.length, 1);
  assert.ok(forced.warnings.some((w) => /ignored \(--force\): .*alpha\/strata\.lock/.test(w)));
  assert.equal(count(), 1);
  // A repaired lock: gc runs normally.
  Deno.writeTextFileSync(lockA, good);
  assert.equal((await gc(root, cacheDir, { dryRun: true })).kept, 1);
  Deno.removeSync(root, { recursive: true });
});
