import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import "./test_family.ts";
import { getModelFamily, type Recognizer } from "../models/recognizer.ts";
import { CHECKPOINT_FORMAT, type CheckpointMeta, readCheckpoint } from "./checkpoint.ts";
import { type CurveRow, trainLoop, type TrainLoopOptions } from "./loop.ts";
import { scheduleSchema } from "./schedule.ts";
import { syntheticData } from "./test_data.ts";
import { MetricAccumulator } from "./metrics.ts";
import { recognize } from "./predict.ts";
import { charsetFor } from "../data/charset.ts";
import { syntheticBatch } from "./test_data.ts";

await tf.setBackend("cpu");

function makeModel(seed = 7): Recognizer {
  const family = getModelFamily("strata_test_tiny");
  return family.create(family.config.parse({}, []), seed, 37);
}

const meta: CheckpointMeta = {
  format: CHECKPOINT_FORMAT,
  model_family: "strata_test_tiny",
  model_config: {},
  num_classes: 37,
  data: { height: 8, width: 32, channels: 3, normalize: "none", protocol: 36, max_length: 25 },
  training: {},
};

function options(model: Recognizer, scratch: string, extra: Partial<TrainLoopOptions> = {}): TrainLoopOptions {
  return {
    model,
    data: syntheticData({ batchSize: 4, seed: 3 }),
    steps: 8,
    stepsPerEpoch: 4,
    lr: 3e-3,
    schedule: scheduleSchema.parse({ type: "step", milestones: [5], factor: 0.1 }, []),
    clipGradNorm: 1,
    seed: 11,
    scratch,
    checkpointEvery: 100,
    validateEvery: 4,
    logEvery: 2,
    validate: async (m) => {
      const acc = new MetricAccumulator();
      const batch = syntheticBatch(1000, { batchSize: 4, seed: 5 });
      const images = tf.tensor4d(batch.images, batch.shape);
      const rec = await recognize(m, images, charsetFor(36));
      images.dispose();
      rec.forEach((r, i) => acc.add(batch.texts[i], r.text, r.confidence));
      return acc.result();
    },
    meta,
    ...extra,
  };
}

async function weightsOf(model: Recognizer): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of [...model.weights, ...model.buffers]) out.set(k, (await v.data()) as Float32Array);
  return out;
}

const stripTiming = (rows: CurveRow[]) => rows.map(({ samples_per_s: _s, elapsed_s: _e, ...rest }) => rest);
const readCurve = async (path: string) =>
  (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l) as CurveRow);

Deno.test("trainLoop: interrupted + resumed ends bit-identical to an uninterrupted run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = makeModel();
    const full = await trainLoop(options(a, join(dir, "a")));
    assert.equal(full.steps, 8);
    const wa = await weightsOf(a);
    const curveA = await readCurve(full.curvePath);
    a.dispose();

    // Abort after step 3 (not a checkpoint step: the abort path saves one), then resume with a fresh model.
    const b1 = makeModel();
    const ac = new AbortController();
    await assert.rejects(
      trainLoop(options(b1, join(dir, "b"), { signal: ac.signal, onStep: (s) => s === 3 && ac.abort() })),
    );
    b1.dispose();
    const saved = await readCheckpoint(join(dir, "b", "resume.safetensors"));
    assert.equal((saved.state as { step: number }).step, 3);
    assert.equal(saved.file.tensors.get("optimizer.step")!.data[0], 3);
    assert.ok(saved.file.tensors.has("optimizer.exp_avg.conv.weight"));
    assert.ok(saved.file.tensors.has("optimizer.exp_avg_sq.fc.bias"));
    assert.ok(saved.file.tensors.has("conv.running_mean"));

    const b2 = makeModel(99); // different init: everything must come from the checkpoint
    const resumed = await trainLoop(options(b2, join(dir, "b")));
    assert.equal(resumed.resumedFrom, 3);
    const wb = await weightsOf(b2);
    b2.dispose();
    for (const [k, v] of wa) assert.deepEqual(wb.get(k), v, `tensor ${k} differs`);
    assert.deepEqual(stripTiming(await readCurve(resumed.curvePath)), stripTiming(curveA));
    assert.equal(full.bestStep, resumed.bestStep);
    assert.deepEqual(curveA.map((r) => r.step), [2, 4, 6, 8]);
    assert.ok(curveA[1].val && curveA[3].val && !curveA[0].val);
    // Schedule: step decay at update index 5 (0-based), so the row for steps 5..6 averages 3e-3 and 3e-4.
    assert.ok(Math.abs(curveA[2].lr - (3e-3 + 3e-4) / 2) < 1e-12);
    const last = await readCheckpoint(full.lastPath);
    assert.equal(last.meta.model_family, "strata_test_tiny");
    assert.ok(!last.file.tensors.has("optimizer.step"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainLoop: no tensor leak across steps", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = makeModel();
    const counts: number[] = [];
    await trainLoop(
      options(m, dir, {
        steps: 7,
        validateEvery: 2,
        checkpointEvery: 3,
        onStep: () => counts.push(tf.memory().numTensors),
      }),
    );
    m.dispose();
    assert.equal(new Set(counts.slice(1)).size, 1, `numTensors per step: ${counts}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainLoop: loss decreases on a learnable synthetic task", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = makeModel();
    await trainLoop(
      options(m, dir, {
        steps: 40,
        validate: undefined,
        lr: 1e-2,
        clipGradNorm: 20,
        schedule: scheduleSchema.parse({}, []),
      }),
    );
    m.dispose();
    const rows = await readCurve(join(dir, "curve.jsonl"));
    assert.ok(rows.at(-1)!.loss < rows[0].loss * 0.8, `loss ${rows[0].loss} → ${rows.at(-1)!.loss}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
