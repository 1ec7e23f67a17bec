/** Tests that need separate processes: key stability, SIGKILL atomicity, concurrent runs, the CLI. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Cache } from "./cache.ts";
import { readLock } from "./provenance.ts";
import { cli, cliCommand, PIPELINE_URL, tempProject, write } from "./test_helpers.ts";

const KINDS = `
import { registerStageKind } from "${PIPELINE_URL}stage_kind.ts";
import { integer, object, string } from "${PIPELINE_URL}schema.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

registerStageKind({
  kind: "x_gen", version: 1, description: "writes n", module: import.meta.url,
  params: object({ n: integer({ default: 1 }), tag: string({ default: "" }) }),
  inputs: {}, outputs: { out: { description: "n", type: "file" } },
  environment: () => ({ flavour: "plain" }),
  async run(ctx) { await Deno.writeTextFile(ctx.output("out"), String(ctx.params.n)); },
});

registerStageKind({
  kind: "x_slow", version: 1, description: "writes slowly", module: import.meta.url,
  params: object({}), inputs: {}, outputs: { data: { description: "d", type: "dir" } },
  async run(ctx) {
    const dir = Deno.env.get("MARKER_DIR")!;
    await Deno.writeTextFile(dir + "/count", "run\\n", { append: true });
    const f = await Deno.open(ctx.output("data") + "/part", { write: true, create: true });
    await f.write(new Uint8Array(1000));
    await Deno.writeTextFile(dir + "/started", "1");
    const wait = Number(Deno.env.get("SLOW_MS") ?? "0");
    for (let t = 0; t < wait; t += 50) { await sleep(50); await f.write(new Uint8Array(1000)); }
    f.close();
  },
});

registerStageKind({
  kind: "x_wait", version: 1, description: "waits until the run is stopped", module: import.meta.url,
  params: object({}), inputs: {}, outputs: { data: { description: "d", type: "dir" } },
  async run(ctx) {
    const dir = Deno.env.get("MARKER_DIR")!;
    await Deno.writeTextFile(ctx.scratch + "/state", "resumable");
    await Deno.writeTextFile(ctx.output("data") + "/part", "partial");
    await Deno.writeTextFile(dir + "/started", "1");
    while (!ctx.signal.aborted) await sleep(25);
    throw new Error("stopped");
  },
});
`;

function project(): { root: string; kinds: string } {
  const root = tempProject();
  const kinds = write(root, "kinds.ts", KINDS);
  return { root, kinds };
}

async function waitForFile(path: string, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  while (true) {
    try {
      Deno.statSync(path);
      return;
    } catch { /* not yet */ }
    if (exited) throw new Error(`process exited before ${path} appeared`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("keys are stable across processes, caches and YAML formatting", async () => {
  const { root, kinds } = project();
  write(root, "a.yaml", "name: k\nstages:\n  g: { kind: x_gen, params: { n: 3, tag: t } }\n  h: { kind: x_gen }\n");
  write(
    root,
    "b.yaml",
    "name: k2\nstages:\n  h:\n    kind: x_gen\n  g:\n    params:\n      tag: 't'\n      n: 3.0\n    kind: x_gen\n",
  );
  // Two names: two files with one name would share (and fight over) results/<name>/.
  const keys = async (file: string, cache: string) => {
    const r = await cli(root, ["run", file, "--cache", cache], [kinds]);
    assert.equal(r.code, 0, r.stderr);
    const lock = readLock(join(root, `results/${file === "a.yaml" ? "k" : "k2"}/strata.lock`))!;
    return Object.fromEntries(Object.entries(lock.stages).map(([id, s]) => [id, s.key]));
  };
  const k1 = await keys("a.yaml", join(root, "c1"));
  const k2 = await keys("b.yaml", join(root, "c2"));
  assert.deepEqual(k1, k2);
  assert.notEqual(k1.g, k1.h);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("a stage killed with SIGKILL mid-write leaves no cache entry; the rerun completes", async () => {
  const { root, kinds } = project();
  write(root, "e.yaml", "stages:\n  s: { kind: x_slow }\n");
  const markers = join(root, "m");
  Deno.mkdirSync(markers);
  const child = cliCommand(root, ["run", "e.yaml"], [kinds], { MARKER_DIR: markers, SLOW_MS: "60000" }).spawn();
  await waitForFile(join(markers, "started"), child);
  child.kill("SIGKILL");
  const st = await child.status;
  assert.equal(st.success, false);
  const cacheDir = join(root, ".strata/cache");
  assert.deepEqual([...new Cache(cacheDir).entries()], []);
  assert.equal([...Deno.readDirSync(join(cacheDir, "tmp"))].length, 1); // the killed attempt's temp dir
  const r = await cli(root, ["run", "e.yaml"], [kinds], { MARKER_DIR: markers, SLOW_MS: "0" });
  assert.equal(r.code, 0, r.stderr);
  const entries = [...new Cache(cacheDir).entries()];
  assert.equal(entries.length, 1);
  assert.equal([...Deno.readDirSync(join(cacheDir, "tmp"))].length, 0); // cleaned under the key's lock
  assert.equal(Deno.readTextFileSync(join(markers, "count")), "run\nrun\n");
  Deno.removeSync(root, { recursive: true });
});

Deno.test("two concurrent runs on one cache compute a key once; the second waits and takes the hit", async () => {
  const { root, kinds } = project();
  write(root, "e.yaml", "stages:\n  s: { kind: x_slow }\n  g: { kind: x_gen }\n");
  const markers = join(root, "m");
  Deno.mkdirSync(markers);
  const env = { MARKER_DIR: markers, SLOW_MS: "2500" };
  const first = cliCommand(root, ["run", "e.yaml"], [kinds], env).spawn();
  await waitForFile(join(markers, "started"), first);
  const second = cliCommand(root, ["run", "e.yaml"], [kinds], env).spawn();
  const [o1, o2] = await Promise.all([first.output(), second.output()]);
  const dec = new TextDecoder();
  assert.equal(o1.code, 0, dec.decode(o1.stderr));
  assert.equal(o2.code, 0, dec.decode(o2.stderr));
  assert.equal(Deno.readTextFileSync(join(markers, "count")), "run\n");
  assert.match(dec.decode(o2.stderr), /cached\s+s\b/);
  assert.equal([...new Cache(join(root, ".strata/cache")).entries()].length, 2);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("CLI: --help, errors naming the stage, status reasons, gc", async () => {
  const { root, kinds } = project();
  for (const cmd of ["run", "status", "gc", "reproduce"]) {
    const r = await cli(root, [cmd, "--help"], [kinds]);
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`usage: strata ${cmd}`));
  }
  write(root, "bad.yaml", "stages:\n  g: { kind: x_gne }\n");
  let r = await cli(root, ["run", "bad.yaml"], [kinds]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.yaml:2:14: stage "g": unknown stage kind "x_gne"; known kinds: (\w+, )*x_gen, x_slow/);
  r = await cli(root, ["run", "bad.yaml", "--jobs", "0"], [kinds]);
  assert.equal(r.code, 2);

  write(
    root,
    "e.yaml",
    "name: st\nstages:\n  g: { kind: x_gen, params: { n: 1 } }\n  h: { kind: x_gen, params: { n: 2 } }\n",
  );
  r = await cli(root, ["run", "e.yaml", "--jobs", "2"], [kinds]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /start\s+g \(x_gen\)/);
  assert.match(r.stderr, /done\s+g in /);
  r = await cli(root, ["status", "e.yaml", "--set", "stages.g.params.n=5"], [kinds]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /stale\s+g\s+params changed: params.n: 1 → 5/);
  assert.match(r.stdout, /fresh\s+h/);
  r = await cli(root, ["run", "e.yaml", "--dry-run", "--set", "stages.g.params.n=x"], [kinds]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--set stages.g.params.n: expected integer/);
  r = await cli(root, ["run", "e.yaml", "--set", "stages.g.params.n=5"], [kinds]);
  assert.equal(r.code, 0, r.stderr);
  r = await cli(root, ["gc", "--dry-run"], [kinds]);
  assert.match(r.stdout, /would free \d+ B \(\d+ bytes\) in 1 entries; kept 2/);
  r = await cli(root, ["gc"], [kinds]);
  assert.match(r.stdout, /freed .* in 1 entries/);
  assert.equal([...new Cache(join(root, ".strata/cache")).entries()].length, 2);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("class 5: SIGTERM stops a run like Ctrl-C; gc removes what killed runs and dead processes left", async () => {
  const { root, kinds } = project();
  write(root, "e.yaml", "name: e\nstages:\n  g: { kind: x_gen }\n  w: { kind: x_wait }\n");
  const markers = join(root, "m");
  Deno.mkdirSync(markers);
  const cacheDir = join(root, ".strata/cache");
  const ls = (sub: string) => {
    try {
      return [...Deno.readDirSync(join(cacheDir, sub))].map((e) => e.name);
    } catch {
      return [];
    }
  };
  // SIGTERM: the waiting stage is stopped, its temp folder removed, the lock written for what finished.
  let child = cliCommand(root, ["run", "e.yaml"], [kinds], { MARKER_DIR: markers }).spawn();
  await waitForFile(join(markers, "started"), child);
  child.kill("SIGTERM");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 143, stderr);
  assert.match(stderr, /terminated; stopping running stages/);
  assert.match(stderr, /FAILED\s+w .*stopped/);
  assert.deepEqual(ls("tmp"), []);
  assert.equal(ls("scratch").length, 1); // resumable state is kept for the next attempt
  assert.ok(readLock(join(root, "results/e/strata.lock"))!.stages.g.key);
  // kill -9: the temp folder stays behind.
  Deno.removeSync(join(markers, "started"));
  child = cliCommand(root, ["run", "e.yaml"], [kinds], { MARKER_DIR: markers }).spawn();
  await waitForFile(join(markers, "started"), child);
  child.kill("SIGKILL");
  await child.status;
  assert.equal(ls("tmp").length, 1);

  // Private LMDB folders in $TMPDIR: of a dead process, of a live one, and two without an owner record.
  const tmpd = join(root, "tmpd");
  const dead = new Deno.Command(Deno.execPath(), { args: ["eval", "1"] }).spawn();
  await dead.status;
  const shadow = (name: string, owner?: unknown) => {
    Deno.mkdirSync(join(tmpd, name), { recursive: true });
    if (owner) Deno.writeTextFileSync(join(tmpd, name, "strata-owner.json"), JSON.stringify(owner));
  };
  const { selfToken } = await import("./liveness.ts");
  shadow("strata-lmdb-dead", { ...selfToken(), pid: dead.pid });
  shadow("strata-lmdb-live", selfToken());
  shadow("strata-lmdb-old");
  const old = new Date(Date.now() - 2 * 24 * 3600_000);
  Deno.utimeSync(join(tmpd, "strata-lmdb-old"), old, old);
  shadow("strata-lmdb-new");
  const r = await cli(root, ["gc"], [kinds], { TMPDIR: tmpd });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(ls("tmp"), []);
  assert.deepEqual(ls("scratch"), []);
  assert.deepEqual([...Deno.readDirSync(tmpd)].map((e) => e.name).sort(), ["strata-lmdb-live", "strata-lmdb-new"]);
  assert.match(r.stdout, /removed .*strata-lmdb-dead/);
  // The entry of g is referenced by the lock and kept.
  assert.equal([...new Cache(cacheDir).entries()].length, 1);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("class 6: CLI errors are one line naming the file or setting, never a stack trace", async () => {
  const { root, kinds } = project();
  write(root, "e.yaml", "stages:\n  g: { kind: x_gen }\n");
  const file = write(root, "not_a_dir", "x");
  const noStack = (r: { stderr: string }) => assert.doesNotMatch(r.stderr, /^\s+at /m, r.stderr);
  let r = await cli(root, ["run", "e.yaml", "--cache", file], [kinds]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`cache directory ${file} \\(--cache or \\$STRATA_CACHE\\) is a file`));
  noStack(r);
  r = await cli(root, ["gc", "--cache", file], [kinds]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /strata gc: error: cache directory .* is a file, not a directory/);
  noStack(r);
  r = await cli(root, ["run", "e.yaml"], [kinds, join(root, "missing_kinds.ts")]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /cannot load the stage-kind module \$STRATA_KINDS entry .*missing_kinds\.ts: Module not found/,
  );
  noStack(r);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  Deno.removeSync(root, { recursive: true });
});
