import assert from "node:assert/strict";
import { curveCharts } from "./curves.ts";
import type { CurveRun } from "./model.ts";

const run = (group: string, seed: number, parts: (step: number) => Record<string, number>): CurveRun => ({
  groupId: `model=${group}`,
  groupLabel: group,
  seed,
  stageId: `train[model=${group},seed=${seed}]`,
  points: [100, 200, 300].map((step) => {
    const p = parts(step);
    return { step, loss: Object.values(p).reduce((a, b) => a + b, 0), parts: p };
  }),
});

const opts = { smooth: 1, seedAxis: "seed", valMetric: "word_accuracy", valLabel: "word accuracy" };

Deno.test("curveCharts: a recognition-loss chart when an objective is more than the cross-entropy", () => {
  const abinet = run("ABINet-Vision", 1, (s) => ({ ce: 3 - s / 1000 }));
  const conclr = run("ConCLR-Vision", 1, (s) => ({ ce_original: 3.1 - s / 1000, contrastive: 20 }));
  const charts = curveCharts([abinet, conclr], opts);
  assert.deepEqual(charts.map((c) => c.file), ["loss.svg", "recognition_loss.svg"]);
  const svg = charts[1].svg;
  // The totals (≈ 23) set the loss chart's y axis; the cross-entropy values (≈ 3) the recognition chart's.
  const twenties = />2[0-9](\.[0-9]+)?</;
  assert.match(charts[0].svg, twenties);
  assert.match(svg, /cross-entropy/);
  assert.doesNotMatch(svg, twenties);
});

Deno.test("curveCharts: no recognition-loss chart when every objective is the cross-entropy", () => {
  const runs = [1, 2].map((seed) => run("ABINet-Vision", seed, (s) => ({ ce: 3 - s / 1000 })));
  assert.deepEqual(curveCharts(runs, opts).map((c) => c.file), ["loss.svg"]);
});

Deno.test("curveCharts: plotted against samples seen when every run's batch size is known, else against step", () => {
  const a = { ...run("ABINet-Vision", 1, (s) => ({ ce: 3 - s / 1000 })), batchSize: 64 };
  const b = { ...run("ConCLR-Vision", 1, (s) => ({ ce: 3 - s / 1000 })), batchSize: 64 };
  const [chart] = curveCharts([a, b], opts);
  assert.match(chart.svg, /samples seen/);
  assert.match(chart.svg, />20k</); // the last point is at step 300 × 64 = 19,200 samples
  const [mixed] = curveCharts([a, run("ConCLR-Vision", 2, (s) => ({ ce: 3 - s / 1000 }))], opts);
  assert.match(mixed.svg, />step</);
  assert.doesNotMatch(mixed.svg, /samples seen/);
});
