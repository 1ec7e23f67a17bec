/**
 * strhub-like evaluation: a parseq model trained by the train stage, evaluated with `decode_ar`,
 * `refine_iters` and `rotation`, writing strhub's table and the per-data-set label filtering; plus the
 * rotation and table helpers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import "../models/parseq/mod.ts";
import "./test_family.ts";
import trainKind from "../tasks/train.ts";
import evaluateKind, { type EvaluateParams } from "../tasks/evaluate.ts";
import { fakeContext, makeDemoLmdb, resolved } from "./test_context.ts";
import { rotateImages } from "./evaluation.ts";
import { filteringCounts, filteringTable, strhubTable } from "./strhub_table.ts";
import { combineMetrics, MetricAccumulator } from "./metrics.ts";
import { getModelFamily } from "../models/recognizer.ts";
import { predictOptions } from "./predict.ts";

Deno.test("evaluate: parseq trained by the train stage, strhub table, decoding params, rotations, filtering", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const trainParams = trainKind.params.parse({
      model: "parseq",
      architecture: { preset: "micro", image_height: 8, image_width: 32, max_length: 8, embed_dim: 16 },
      data: { image: { height: 8, width: 32 }, labels: { max_length: 8 }, augment: { enabled: false } },
      batch_size: 2,
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
    const params = evaluateKind.params.parse({
      batch_size: 4,
      backend: "cpu",
      decode_ar: false,
      refine_iters: 2,
      rotation: [0, 180],
      cost: true,
    }, []) as EvaluateParams;
    const ctx = fakeContext({
      params,
      inputs: {
        model: [{ ...resolved(modelDir, "train"), output: "model", kind: "train", matrix: {} }],
        datasets: [resolved(lmdb, "iiit5k"), resolved(lmdb, "svt")],
      },
      workDir: join(dir, "e"),
      scratch: join(dir, "es"),
    });
    await evaluateKind.run(ctx);
    const out = join(dir, "e", "outputs");
    const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics")));
    assert.equal(metrics.model.family, "parseq");
    assert.deepEqual(metrics.decoding, { decode_ar: false, refine_iters: 2 });
    assert.deepEqual(metrics.datasets.map((d: { name: string }) => d.name), ["iiit5k", "iiit5k@180", "svt", "svt@180"]);
    // The test set is the protocol's (labels ≤ evaluate's max_length, 25): CHEWBACCA and Verbandstoffe, longer than
    // this model's max_length 8, stay in and count as errors; the others are case-folded under protocol 36.
    assert.deepEqual(metrics.filtering[0].dropped, {});
    assert.equal(metrics.filtering[0].usable, 6);
    assert.equal(metrics.filtering[0].stored, 6);
    const usable = metrics.filtering.reduce((a: number, f: { usable: number }) => a + f.usable, 0);
    assert.equal(metrics.combined.samples, usable);
    assert.equal(metrics.combined_by_rotation["180"].samples, usable);
    // cost: true — model-level costs in metrics.json and in every row (for report tables).
    assert.equal(metrics.cost.modules.map((m: { module: string }) => m.module).join(), "model,encoder,decoder,head");
    assert.equal(metrics.cost.modules[0].parameters, metrics.datasets[0].params_m * 1e6);
    assert.ok(metrics.combined.gflops > 0 && metrics.datasets[3].ms_per_image > 0);
    const table = await Deno.readTextFile(join(out, "table"));
    assert.match(table, /### Cost \(batch 1\)/);
    assert.match(table, /\| Dataset \| # samples \| Accuracy \| 1 - NED \| Confidence \| Label Length \|/);
    assert.match(table, /### Rotation 180°/);
    assert.match(table, /\| iiit5k@180 \| 6 \|/);
    assert.match(table, new RegExp(`\\| \\*\\*Combined\\*\\* \\| ${usable} \\|`));
    assert.match(table, /\| iiit5k \| 6 \| 6 \|/);
    assert.match(table, /decode_ar false, refine_iters 2/);
    const rows = (await Deno.readTextFile(join(out, "predictions"))).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(rows.length, 2 * usable);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("predictOptions: decoding params are an error for a family without them", async () => {
  await tf.setBackend("cpu");
  const family = getModelFamily("strata_test_tiny");
  const tiny = family.create(family.config.parse({ height: 8, width: 32 }, []), 1, 37);
  assert.throws(() => predictOptions(tiny, { decode_ar: true }, "evaluate"), /has no decode_ar/);
  assert.deepEqual(predictOptions(tiny, {}, "evaluate"), { decodeAr: undefined, refineIters: undefined });
  tiny.dispose();
});

Deno.test("rotateImages: 180° is exact, 90° then 270° gives back a square image, 90° is counter-clockwise", async () => {
  await tf.setBackend("cpu");
  const x = tf.tensor4d(Float32Array.from({ length: 9 }, (_, i) => i), [1, 3, 3, 1]);
  assert.deepEqual(Array.from(rotateImages(x, 180).dataSync()), [8, 7, 6, 5, 4, 3, 2, 1, 0]);
  // Counter-clockwise: the right column becomes the top row.
  assert.deepEqual(Array.from(rotateImages(x, 90).dataSync()), [2, 5, 8, 1, 4, 7, 0, 3, 6]);
  assert.deepEqual(Array.from(rotateImages(rotateImages(x, 90), 270).dataSync()), Array.from(x.dataSync()));
  const wide = tf.zeros([2, 8, 32, 3]) as tf.Tensor4D;
  assert.deepEqual(rotateImages(wide, 90).shape, [2, 8, 32, 3]);
  tf.dispose([x, wide]);
});

Deno.test("strhubTable / filteringTable: strhub's columns in percent, Combined pooled", () => {
  const a = new MetricAccumulator(), b = new MetricAccumulator();
  a.add("abc", "abc", 0.9);
  a.add("de", "dx", 0.5);
  b.add("fghi", "fghi", 1);
  const rows = [{ name: "A", ...a.result() }, { name: "B", ...b.result() }];
  const t = strhubTable(rows, combineMetrics(rows)).split("\n");
  assert.equal(t[2], "| A | 2 | 50.00 | 75.00 | 70.00 | 2.50 |");
  assert.equal(t[4], "| **Combined** | 3 | 66.67 | 83.33 | 80.00 | 3.00 |");
  const counts = filteringCounts([
    { labels: { dropped: { too_long: 2 }, changed: { case_folded: 3 } }, bad: { counts: { undecodable_image: 1 } } },
  ]);
  assert.deepEqual(counts, { dropped: { too_long: 2, bad_undecodable_image: 1 }, changed: { case_folded: 3 } });
  assert.equal(
    filteringTable([{ name: "A", stored: 9, usable: 6, ...counts }]).split("\n")[2],
    "| A | 9 | 6 | 1 | 2 | 3 |",
  );
});
