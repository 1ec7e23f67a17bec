import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildReport } from "../report/model.ts";
import { writeFixtures } from "../report/testing.ts";
import { loadSide, main, parseDiffArgs } from "./diff.ts";

async function reportJson(dir: string, bias: number, steps: number): Promise<string> {
  const inputs = await writeFixtures(join(dir, `fx-${bias}-${steps}`), { bias: { conclr_vision: bias }, steps });
  const { data } = await buildReport(inputs.metrics, inputs.curves, {
    experiment: "conclr_vs_abinet",
    stageId: "report",
    seedAxis: "seed",
    rows: "model",
    metrics: ["ccr", "cwr"],
  });
  return JSON.stringify(data, null, 2) + "\n";
}

/** Runs `main` capturing what it prints. */
async function run(args: string[], cwd?: string): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  const before = Deno.cwd();
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    if (cwd) Deno.chdir(cwd);
    const code = await main(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    Deno.chdir(before);
    [console.log, console.error] = [log, error];
  }
}

function git(cwd: string, ...args: string[]) {
  const r = new Deno.Command("git", {
    args: ["-c", "user.email=t@example.org", "-c", "user.name=t", "-c", "commit.gpgsign=false", ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!r.success) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

Deno.test("parseDiffArgs", () => {
  const a = parseDiffArgs(["x", "y", "--json", "--fail-if-worse", "iiit5k.cwr=0.01", "--fail-if-worse=*.ccr=0.1"]);
  assert.ok(a !== "help");
  assert.deepEqual([a.a, a.b, a.json, a.failIfWorse], ["x", "y", true, ["iiit5k.cwr=0.01", "*.ccr=0.1"]]);
  assert.equal(parseDiffArgs(["--help"]), "help");
  assert.throws(() => parseDiffArgs(["only-one"]), /two reports/);
  assert.throws(() => parseDiffArgs(["a", "b", "--bogus"]), /bogus/);
});

Deno.test("diff CLI: report files, results dirs, experiments, locks and git revisions", async () => {
  const root = await Deno.makeTempDir({ prefix: "strata-diffcli-" });
  try {
    // A tiny project: deno.json, an experiment publishing to results/exp, a committed report, then a new one.
    await writeFile(join(root, "deno.json"), "{}\n");
    await mkdir(join(root, "experiments"));
    await writeFile(
      join(root, "experiments", "exp.yaml"),
      "name: exp\nstages:\n  report:\n    kind: report\n    publish: results/exp\n    inputs: { metrics: evaluate.metrics }\n",
    );
    const results = join(root, "results", "exp");
    await mkdir(results, { recursive: true });
    const lock = (key: string, steps: number) =>
      JSON.stringify({ version: 1, experiment: "exp", stages: { train: { key, components: { params: { steps } } } } });
    await writeFile(join(results, "report.json"), await reportJson(root, 0.05, 300));
    await writeFile(join(results, "strata.lock"), lock("sha256:aaaaaaaaaaaaaaaa", 300));
    git(root, "init", "-q", "-b", "main");
    git(root, "add", "-A");
    git(root, "commit", "-q", "-m", "base");
    await writeFile(join(results, "report.json"), await reportJson(root, 0.0, 400));
    await writeFile(join(results, "strata.lock"), lock("sha256:bbbbbbbbbbbbbbbb", 400));
    await writeFile(join(root, "old.json"), await reportJson(root, 0.05, 300));

    // git revision vs the experiment file: params, metrics, lock keys.
    let r = await run(["git:HEAD:results/exp/report.json", "experiments/exp.yaml"], root);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /### Params that differ/);
    assert.match(r.out, /\| \*all\* \| `steps` \| `300` \| `400` \|/);
    assert.match(r.out, /ConCLR-Vision \| IIIT5k +\| CWR .* −0\.050 \| +↓/);
    assert.match(
      r.out,
      /### Stages whose key changed\n\n.*\n.*\n\| `train` \| `aaaaaaaaaaaa` \| `bbbbbbbbbbbb` \| `steps`: `300` → `400` \|/,
    );

    // A gate that fails exits 1 and says why on stderr.
    r = await run(["old.json", "results/exp", "--fail-if-worse", "iiit5k.cwr=0.01"], root);
    assert.equal(r.code, 1);
    assert.match(r.out, /❌ `iiit5k.cwr=0.01`/);
    assert.match(r.err, /ConCLR-Vision iiit5k.cwr dropped by 0\.0500/);
    r = await run(["old.json", "results/exp/strata.lock", "--fail-if-worse", "*.cwr=0.1"], root);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /✅/);

    // JSON for tools.
    r = await run(["git:HEAD:results/exp/strata.lock", "results/exp/report.json", "--json"], root);
    assert.equal(r.code, 0, r.err);
    const json = JSON.parse(r.out);
    assert.equal(json.metrics.length, 16);
    assert.equal(json.stages[0].stage, "train");

    // Missing inputs: exit 2, or a note and 0 with --missing-ok (a base branch without a report yet).
    r = await run(["git:HEAD:results/nope/report.json", "results/exp"], root);
    assert.equal(r.code, 2);
    assert.match(r.err, /no such file at that revision/);
    r = await run(["git:HEAD:results/nope/report.json", "results/exp", "--missing-ok"], root);
    assert.equal(r.code, 0);
    assert.match(r.out, /Nothing to compare/);
    r = await run(["old.json", "results/exp", "--fail-if-worse", "iiit5k.cwr"], root);
    assert.equal(r.code, 2);
    r = await run(["deno.json", "results/exp"], root);
    assert.equal(r.code, 2);
    assert.match(r.err, /neither a strata report.json nor a strata.lock/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadSide: an experiment without publish falls back to results/<name>", async () => {
  const root = await Deno.makeTempDir({ prefix: "strata-diffcli-" });
  try {
    await writeFile(join(root, "deno.json"), "{}\n");
    await writeFile(join(root, "e.yml"), "stages: {}\n");
    await mkdir(join(root, "results", "e"), { recursive: true });
    await writeFile(join(root, "results", "e", "report.json"), await reportJson(root, 0, 100));
    const side = await loadSide("e.yml", root);
    assert.equal(side.report?.experiment, "conclr_vs_abinet");
    // `extends`: the publish dir of the base file's report stage.
    await writeFile(join(root, "base.yaml"), "stages:\n  report: { kind: report, publish: results/shared }\n");
    await writeFile(join(root, "child.yaml"), "extends: base.yaml\nname: child\n");
    await mkdir(join(root, "results", "shared"), { recursive: true });
    await writeFile(join(root, "results", "shared", "report.json"), await reportJson(root, 0.01, 100));
    const child = await loadSide("child.yaml", root);
    assert.ok(child.report);
    await assert.rejects(() => loadSide("base.yaml", join(root, "results")), /not found/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
