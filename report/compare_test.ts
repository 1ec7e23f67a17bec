import assert from "node:assert/strict";
import { join } from "node:path";
import { compareOnDataset, type ModelPredictions, verdictSentence } from "./compare.ts";
import type { ReportData } from "./model.ts";
import { fakeContext, writeFixtures } from "./testing.ts";
import kind, { reportParams } from "../tasks/report.ts";
import { tableProblems } from "./markdown.ts";

/** Runs of `group` whose sample i is right when `right(seed, i)`. */
function runs(group: string, seeds: number[], n: number, right: (seed: number, i: number) => boolean) {
  return seeds.map((seed): ModelPredictions => ({
    group,
    seed: String(seed),
    dataset: "d",
    byIndex: new Map(
      Array.from({ length: n }, (_, i) => [i + 1, {
        correct: right(seed, i),
        correctChars: right(seed, i) ? 4 : 2,
        gtChars: 4,
      }]),
    ),
  }));
}

Deno.test("comparison: a clearly better treatment is 'better', with the interval above 0", () => {
  const a = runs("a", [1, 2], 400, (s, i) => (i * 7 + s) % 10 < 3); // ≈ 0.3
  const b = runs("b", [1, 2], 400, (s, i) => (i * 7 + s) % 10 < 6); // ≈ 0.6
  const c = compareOnDataset("d", a, b, { replicates: 500 })!;
  assert.equal(c.verdict, "better");
  assert.ok(Math.abs(c.cwr.diff - 0.3) < 0.01, `diff ${c.cwr.diff}`);
  assert.ok(c.cwr.ci.low > 0.2 && c.cwr.ci.high < 0.4, JSON.stringify(c.cwr.ci));
  assert.ok(c.cwr.ci_samples.low <= c.cwr.diff && c.cwr.diff <= c.cwr.ci_samples.high);
  // CCR is the ratio of character sums: a right word has 4/4, a wrong one 2/4.
  assert.ok(Math.abs(c.ccr.baseline - (0.3 + 0.7 * 0.5)) < 0.01, `ccr ${c.ccr.baseline}`);
  assert.equal(compareOnDataset("d", b, a, { replicates: 500 })!.verdict, "worse");
  // Reproducible: the same seed gives the same interval.
  assert.deepEqual(compareOnDataset("d", a, b, { replicates: 500 })!.cwr.ci, c.cwr.ci);
});

Deno.test("comparison: with one seed per family the sentence says it compares these two models", () => {
  const a = runs("a", [1], 400, (s, i) => (i * 7 + s) % 10 < 3);
  const b = runs("b", [1], 400, (s, i) => (i * 7 + s) % 10 < 6);
  const one = compareOnDataset("d", a, b, { replicates: 300 })!;
  assert.equal(one.verdict, "better");
  // No seed part: both intervals are the paired bootstrap over the test images.
  assert.deepEqual(one.cwr.ci, one.cwr.ci_samples);
  const upper = (v: string) => v.toUpperCase();
  assert.equal(verdictSentence(one, upper), "B is better than A here (one seed each: these two models)");
  const two = compareOnDataset("d", runs("a", [1, 2], 400, () => false), runs("b", [1, 2], 400, () => true), {
    replicates: 300,
  })!;
  assert.equal(verdictSentence(two, upper), "B is better than A here");
});

Deno.test("comparison: equal models and seed noise larger than the gap are 'not distinguishable'", () => {
  const a = runs("a", [1, 2], 300, (s, i) => (i + s) % 2 === 0);
  const c = compareOnDataset("d", a, runs("b", [1, 2], 300, (s, i) => (i + s) % 2 === 0), { replicates: 300 })!;
  assert.equal(c.verdict, "not distinguishable");
  assert.equal(c.cwr.diff, 0);
  // Seeds disagree strongly (0.1 vs 0.7 for b): the seeds + samples interval must be wider than samples only.
  const b = runs("b", [1, 2], 300, (s, i) => i % 10 < (s === 1 ? 1 : 7));
  const d = compareOnDataset("d", runs("a", [1, 2], 300, (_s, i) => i % 10 < 3), b, { replicates: 1000 })!;
  assert.ok(d.cwr.ci.high - d.cwr.ci.low > 2 * (d.cwr.ci_samples.high - d.cwr.ci_samples.low));
  assert.equal(d.verdict, "not distinguishable");
  // Only sample indices that every run scored are compared.
  a[0].byIndex.delete(1);
  assert.equal(compareOnDataset("d", a, runs("b", [1, 2], 300, () => true), { replicates: 100 })!.samples, 299);
});

Deno.test("report: evaluation per (model, data set) is merged per model; comparison section with the verdict", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-compare-" });
  try {
    const inputs = await writeFixtures(dir, {
      seeds: [1, 2],
      datasets: { synth_test: 300, iiit5k: 400 },
      bias: { conclr_vision: 0.3 },
      perDataset: true,
    });
    assert.equal(inputs.metrics.length, 8);
    const params = reportParams.parse({
      headline: { columns: ["iiit5k", "synth_test"] },
      compare: { baseline: "abinet_vision", treatment: "conclr_vision", replicates: 300 },
    }, []);
    const figure = join(dir, "montage.png");
    await Deno.writeFile(figure, new Uint8Array([0x89, 0x50, 0x4e, 0x47]));
    const figures = [{ ...inputs.metrics[0], path: figure, stageId: "conaug_montage", output: "montage" }];
    const ctx = fakeContext(dir, { ...params, figure_captions: { conaug_montage: "ConAug views" } }, {
      ...inputs,
      figures,
    });
    await kind.run(ctx);
    const out = ctx.output("report");
    const readme = await Deno.readTextFile(join(out, "README.md"));
    const data = JSON.parse(await Deno.readTextFile(join(out, "report.json"))) as ReportData;
    assert.deepEqual(tableProblems(readme), []);
    // Two groups (one per model) of two seeds, each holding both data sets and a recomputed combined entry.
    assert.equal(data.groups.length, 2);
    for (const g of data.groups) {
      assert.equal(g.n, 2);
      assert.deepEqual(Object.keys(g.metrics).sort(), ["combined", "iiit5k", "synth_test"]);
      assert.equal(g.metrics.combined.count.mean, 700);
      const w = (g.metrics.iiit5k.cwr.mean! * 400 + g.metrics.synth_test.cwr.mean! * 300) / 700;
      assert.ok(Math.abs(g.metrics.combined.cwr.mean! - w) < 1e-9);
      assert.ok(g.runs.every((r) => !r.stage_id.includes("dataset=")), g.runs.map((r) => r.stage_id).join());
    }
    assert.deepEqual(data.comparisons!.map((c) => [c.dataset, c.verdict]), [
      ["iiit5k", "better"],
      ["synth_test", "better"],
    ]);
    assert.match(readme, /## ConCLR-Vision − ABINet-Vision/);
    assert.match(readme, /ConCLR-Vision is better than ABINet-Vision here/);
    assert.match(readme, /95 % CI \(seeds \+ samples\)/);
    // Figures are copied next to the README and shown with their caption.
    assert.match(readme, /## Figures\n\n!\[conaug_montage\]\(figure_1_conaug_montage\.png\)\n\nConAug views/);
    assert.deepEqual(await Deno.readFile(join(out, "figure_1_conaug_montage.png")), await Deno.readFile(figure));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
