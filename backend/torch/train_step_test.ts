/**
 * A full training step of `abinet_vision` (tiny) and `conclr_vision` (micro) on torch against wasm: the loss,
 * every gradient and every updated weight within 1e-4 relative, and 20 steps from the same seed giving the
 * same loss curve within 1e-3. Dropout is off (its masks come from different generators per backend).
 * Also: libtorch memory and the tfjs tensor count stay flat over 200 steps.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "../../models/mod.ts";
import { getModelFamily, type Recognizer } from "../../models/recognizer.ts";
import { Adam } from "../../training/adam.ts";
import { makeTrainStep } from "../../training/loop.ts";
import { deriveSeed, Rng } from "../../training/random.ts";
import { syntheticBatch } from "../../training/test_data.ts";
import { useWasm } from "../wasm.ts";
import { currentBuild } from "./build.ts";
import { activateTorch, torchBackend } from "./mod.ts";

const build = await currentBuild();
const SKIP = build ? "" : " (SKIPPED: the libtorch shim is not built; run `deno task setup` with libtorch installed)";

const FAMILIES = [
  { family: "abinet_vision", preset: "tiny", batch: 3 },
  { family: "conclr_vision", preset: "micro", batch: 2 },
] as const;

function create(family: string, preset: string): Recognizer {
  const f = getModelFamily(family);
  return f.create(f.config.parse({ preset, dropout: 0 }, []), 7, 37);
}

async function snapshot(m: Map<string, tf.Tensor>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of m) out.set(k, (await v.data()) as Float32Array);
  return out;
}

function assertClose(what: string, got: Float32Array, ref: Float32Array, rel: number): void {
  let scale = 1e-6, worst = 0;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
  assert.ok(worst <= rel * scale, `${what}: max |Δ| ${worst.toExponential(2)} > ${rel} × ${scale.toExponential(2)}`);
}

interface StepRecord {
  loss: number;
  grads: Map<string, Float32Array>;
  updated: Map<string, Float32Array>;
  curve: number[];
}

async function record(family: string, preset: string, batchSize: number, steps: number): Promise<StepRecord> {
  const model = create(family, preset);
  const c = model.config as Record<string, number>;
  const batch = (s: number) => syntheticBatch(s, { batchSize, height: c.image_height, width: c.image_width });
  try {
    const b0 = batch(0);
    const { value, grads } = tf.variableGrads(() => {
      const images = tf.tensor4d(b0.images, b0.shape);
      const random = new Rng(deriveSeed(1, "step", 0)).fn();
      return model.trainingLoss(b0, images, { step: 0, random }).loss;
    }, [...model.weights.values()]);
    const loss = (await value.data())[0];
    const byName = new Map<string, tf.Tensor>();
    for (const [name, v] of model.weights) if (grads[v.name]) byName.set(name, grads[v.name]);
    const gradValues = await snapshot(byName);
    tf.dispose([value, ...Object.values(grads)]);

    const optimizer = new Adam(model.weights);
    const step = makeTrainStep(model, optimizer, 20, 1);
    const curve: number[] = [];
    let updated = new Map<string, Float32Array>();
    for (let s = 0; s < steps; s++) {
      curve.push((await step(batch(s), s, 1e-3)).loss);
      if (s === 0) updated = await snapshot(model.weights);
    }
    optimizer.dispose();
    return { loss, grads: gradValues, updated, curve };
  } finally {
    model.dispose();
  }
}

for (const { family, preset, batch } of FAMILIES) {
  Deno.test(`torch training step of ${family} (${preset}) matches wasm: loss, gradients, weights, 20 steps${SKIP}`, {
    ignore: !build,
  }, async () => {
    await useWasm();
    const ref = await record(family, preset, batch, 20);
    await activateTorch("cpu");
    const got = await record(family, preset, batch, 20);
    await useWasm();
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-4 * Math.abs(ref.loss), `loss ${got.loss} vs ${ref.loss}`);
    assert.deepEqual([...got.grads.keys()].sort(), [...ref.grads.keys()].sort());
    for (const [name, g] of ref.grads) assertClose(`gradient ${name}`, got.grads.get(name)!, g, 1e-4);
    for (const [name, w] of ref.updated) assertClose(`updated ${name}`, got.updated.get(name)!, w, 1e-4);
    got.curve.forEach((l, i) =>
      assert.ok(Math.abs(l - ref.curve[i]) <= 1e-3 * Math.abs(ref.curve[i]), `step ${i + 1}: ${l} vs ${ref.curve[i]}`)
    );
  });
}

Deno.test(`torch: tensor count and libtorch bytes stay flat over 200 training steps${SKIP}`, {
  ignore: !build,
}, async () => {
  await activateTorch("cpu");
  const model = create("abinet_vision", "micro");
  const optimizer = new Adam(model.weights);
  const step = makeTrainStep(model, optimizer, 20, 1);
  const c = model.config as Record<string, number>;
  const backend = torchBackend()!;
  let after10 = { tensors: 0, bytes: 0, handles: 0 };
  for (let s = 0; s < 200; s++) {
    await step(syntheticBatch(s % 4, { batchSize: 2, height: c.image_height, width: c.image_width }), s, 1e-3);
    if (s === 9) {
      const m = backend.libtorchMemory();
      after10 = { tensors: tf.memory().numTensors, bytes: m.bytes, handles: m.handles };
    }
  }
  const m = backend.libtorchMemory();
  assert.equal(tf.memory().numTensors, after10.tensors, "tfjs tensors");
  assert.equal(m.handles, after10.handles, "libtorch handles");
  assert.equal(m.bytes, after10.bytes, "libtorch bytes");
  optimizer.dispose();
  model.dispose();
  await tf.setBackend("cpu");
});
