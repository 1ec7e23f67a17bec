import assert from "node:assert/strict";
import { join } from "node:path";
import "../training/test_family.ts";
import trainKind from "./train.ts";
import evaluateKind, { type EvaluateParams } from "./evaluate.ts";
import { fakeContext, makeDemoLmdb, resolved } from "../training/test_context.ts";
import { MetricAccumulator } from "../training/metrics.ts";

Deno.test("evaluate kind: metrics.json and predictions from a trained tiny model", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    const labels = await makeDemoLmdb(lmdb);
    const trainParams = trainKind.params.parse({
      model: "strata_test_tiny",
      architecture: { height: 8, width: 32 },
      data: { image: { height: 8, width: 32 }, augment: { enabled: false } },
      batch_size: 3,
      steps: 2,
      backend: "cpu",
    }, []);
    await trainKind.run(
      fakeContext({
        params: trainParams,
        inputs: { train: [resolved(lmdb, "demo")] },
        workDir: join(dir, "t"),
        scratch: join(dir, "s"),
      }),
    );
    const modelDir = join(dir, "t", "outputs", "model");
    const params = evaluateKind.params.parse({ batch_size: 4, backend: "cpu" }, []) as EvaluateParams;
    assert.equal(params.protocol, 36);
    assert.equal(params.checkpoint, "best");
    const ctx = fakeContext({
      params,
      inputs: {
        model: [{ ...resolved(modelDir, "train[seed=1]"), output: "model", kind: "train", matrix: { seed: 1 } }],
        datasets: [
          resolved(lmdb, "iiit5k"),
          resolved(lmdb, "path:/x/svt", { name: "svt" }),
          resolved(lmdb, "path:/y/demo"),
        ],
      },
      workDir: join(dir, "e"),
      scratch: join(dir, "es"),
    });
    const result = await evaluateKind.run(ctx);
    assert.ok(result?.summary);
    const out = join(dir, "e", "outputs");
    const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics")));
    assert.equal(metrics.format, "strata-metrics-v1");
    assert.equal(metrics.model.family, "strata_test_tiny");
    assert.deepEqual(metrics.model.matrix, { seed: 1 });
    assert.equal(metrics.model.step, 2);
    assert.deepEqual(metrics.datasets.map((d: { name: string }) => d.name), ["iiit5k", "svt", "demo"]);
    assert.equal(metrics.combined.samples, 18);
    const rows = (await Deno.readTextFile(join(out, "predictions"))).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(rows.length, 18);
    assert.deepEqual(Object.keys(rows[0]).sort(), ["confidence", "correct", "dataset", "index", "label", "prediction"]);
    // Protocol 36: labels are lowercased, in LMDB order.
    assert.deepEqual(rows.slice(0, 6).map((r) => r.label), labels.map((l) => l.toLowerCase()));
    assert.deepEqual(rows.slice(0, 6).map((r) => r.index), [1, 2, 3, 4, 5, 6]);
    // metrics.json agrees with the predictions.
    const acc = new MetricAccumulator();
    for (const r of rows.filter((r) => r.dataset === "svt")) acc.add(r.label, r.prediction, r.confidence);
    const svt = metrics.datasets[1];
    const re = acc.result();
    for (const k of ["word_accuracy", "ccr", "one_minus_ned", "mean_confidence", "mean_label_length"] as const) {
      assert.ok(Math.abs(svt[k] - re[k]) < 1e-12, k);
    }
    for (const r of rows) assert.ok(r.confidence > 0 && r.confidence <= 1);

    // The test set is the protocol's (labels ≤ 25), not filtered by what the model reads; `max_length` narrows it.
    const short = evaluateKind.params.parse({ batch_size: 4, backend: "cpu", max_length: 5 }, []) as EvaluateParams;
    const ctx5 = fakeContext({
      params: short,
      inputs: { ...ctx.inputs, datasets: [resolved(lmdb, "iiit5k")] },
      workDir: join(dir, "e5"),
      scratch: join(dir, "es5"),
    });
    await evaluateKind.run(ctx5);
    const m5 = JSON.parse(await Deno.readTextFile(join(dir, "e5", "outputs", "metrics")));
    assert.equal(m5.combined.samples, labels.filter((l) => l.length <= 5).length);
    assert.ok(m5.combined.samples < 6);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
