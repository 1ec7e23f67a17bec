import assert from "node:assert/strict";
import { diffLocks, diffReports, parseRule, renderDiffMarkdown } from "./diff.ts";
import { tableProblems } from "./markdown.ts";
import { buildReport, type ReportData } from "./model.ts";
import { writeFixtures } from "./testing.ts";

async function report(bias: number, steps = 300, seeds = [1, 2, 3]): Promise<ReportData> {
  const dir = await Deno.makeTempDir({ prefix: "strata-diff-" });
  try {
    const inputs = await writeFixtures(dir, { bias: { conclr_vision: bias }, steps, seeds });
    const { data } = await buildReport(inputs.metrics, inputs.curves, {
      experiment: "conclr_vs_abinet",
      stageId: "report",
      seedAxis: "seed",
      rows: "model",
      metrics: ["ccr", "cwr"],
    });
    return JSON.parse(JSON.stringify(data));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseRule: data set, wildcard, group and errors", () => {
  const r = parseRule("iiit5k.cwr=0.01");
  assert.equal(r.threshold, 0.01);
  assert.ok(r.dataset.test("iiit5k") && !r.dataset.test("svt") && r.metric.test("cwr") && r.group.test("anything"));
  const w = parseRule("*.cwr=0.02");
  assert.ok(w.dataset.test("svt") && w.dataset.test("combined"));
  const g = parseRule("model=conclr_vision/svt.ccr=0");
  assert.ok(g.group.test("model=conclr_vision") && !g.group.test("model=abinet_vision"));
  assert.ok(parseRule("cwr=0.1").dataset.test("iiit5k"));
  assert.throws(() => parseRule("iiit5k.cwr"), /METRIC=THRESHOLD/);
  assert.throws(() => parseRule("iiit5k.cwr=-1"), /threshold ≥ 0/);
  assert.throws(() => parseRule("iiit5k.accuracy=0.1"), /unknown metric "accuracy"/);
});

Deno.test("diffReports: params that differ only, metrics with deltas and better/worse", async () => {
  const a = await report(0.05, 300);
  const b = await report(0.0, 400);
  const d = diffReports({ source: "A", report: a }, { source: "B", report: b });
  // `steps` changed for every group: one row for all; nothing else differs.
  assert.deepEqual(d.params.map((p) => [p.group, p.key, p.old, p.new]), [["*", "steps", 300, 400]]);
  const conclr = d.metrics.filter((m) => m.group === "model=conclr_vision");
  const abinet = d.metrics.filter((m) => m.group === "model=abinet_vision");
  assert.equal(conclr.length, 8); // (3 data sets + combined) × (ccr, cwr)
  assert.ok(conclr.every((m) => m.change === "worse" && Math.abs(m.delta! + 0.05) < 1e-9));
  assert.ok(abinet.every((m) => m.change === "same"));
  const md = renderDiffMarkdown(d);
  assert.deepEqual(tableProblems(md), []);
  assert.match(md, /\| ConCLR-Vision \| IIIT5k +\| CWR +\| +0\.460 ± 0\.007 \| +0\.410 ± 0\.007 \| +−0\.050 \| +↓ +\|/);
  assert.match(md, /\| \*all\* \| `steps` \| `300` \| `400` \|/);

  // The reverse is better.
  const r = diffReports({ source: "B", report: b }, { source: "A", report: a });
  assert.ok(r.metrics.filter((m) => m.group === "model=conclr_vision").every((m) => m.change === "better"));
});

Deno.test("gates: fail when a metric drops more than the threshold", async () => {
  const a = await report(0.05);
  const b = await report(0.0);
  const run = (...rules: string[]) =>
    diffReports({ source: "A", report: a }, { source: "B", report: b }, { rules: rules.map(parseRule) }).gate;
  assert.equal(run("iiit5k.cwr=0.01").failures.length, 1);
  assert.equal(run("iiit5k.cwr=0.06").failures.length, 0);
  assert.equal(run("*.cwr=0.01").failures.length, 4);
  assert.equal(run("abinet_vision/*.cwr=0.01").failures.length, 0);
  assert.equal(run("ConCLR-Vision/svt.ccr=0").failures.length, 1);
  assert.deepEqual(run("ic13.cwr=0").unmatched, ["ic13.cwr=0"]);
  // A data set missing from the new report fails the gate that covers it.
  const trimmed: ReportData = JSON.parse(JSON.stringify(a));
  for (const g of trimmed.groups) delete g.metrics.svt;
  const gone = diffReports({ source: "A", report: a }, { source: "B", report: trimmed }, {
    rules: [parseRule("svt.cwr=0.5")],
  }).gate;
  assert.equal(gone.failures.length, 2);
  assert.equal(gone.failures[0].drop, Infinity);
  // So does a whole group (a model) missing from the new report.
  const noAbinet: ReportData = { ...a, groups: a.groups.filter((g) => !g.id.includes("abinet")) };
  const groupGone = diffReports({ source: "A", report: a }, { source: "B", report: noAbinet }, {
    rules: [parseRule("iiit5k.cwr=0.5")],
  }).gate;
  assert.deepEqual(groupGone.failures.map((f) => [f.delta.group_label, f.drop]), [["ABINet-Vision", Infinity]]);
  const md = renderDiffMarkdown(
    diffReports({ source: "A", report: a }, { source: "B", report: b }, { rules: [parseRule("iiit5k.cwr=0.01")] }),
  );
  assert.match(md, /❌ `iiit5k.cwr=0.01`: ConCLR-Vision IIIT5k CWR dropped by 0\.0500/);
});

Deno.test("groups on one side only, seeds varying, and lock diffs", async () => {
  const a = await report(0, 300, [1, 2]);
  const b = await report(0, 300, [1, 2, 3]);
  b.groups.splice(0, 1);
  const d = diffReports({ source: "A", report: a }, { source: "B", report: b });
  assert.deepEqual(d.groups_only_in_a, ["ABINet-Vision"]);
  // The seed list differs within the shared group.
  assert.deepEqual(d.params.map((p) => [p.group, p.key]), [["model=conclr_vision", "seed"]]);
  const stages = diffLocks(
    { stages: { train: { key: "k1", components: { params: { lr: 1, steps: 3 } } }, gone: { key: "x" } } },
    { stages: { train: { key: "k2", components: { params: { lr: 2, steps: 3 } } } } },
  );
  assert.deepEqual(stages.map((s) => [s.stage, s.old_key, s.new_key, s.params.map((p) => p.key)]), [
    ["train", "k1", "k2", ["lr"]],
    ["gone", "x", null, []],
  ]);
  assert.deepEqual(tableProblems(renderDiffMarkdown({ ...d, stages })), []);
});
