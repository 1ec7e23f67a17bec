/**
 * A full training step of `abinet_vision` (tiny) and `conclr_vision` (micro) on torch against tfjs's wasm and
 * cpu backends: the loss within 1e-4 relative; every gradient within 1e-4 of its largest value, or no farther from
 * the cpu backend's than wasm's is, also in relative L2 over all gradients (float32 round-off after BatchNorm
 * reaches 6e-3 of a tensor's maximum between tfjs's own cpu and wasm, and ConCLR's contrastive gradients differ
 * by 1.6e-3 in L2 between them, so 1e-4 alone cannot hold); the updated weights within 1e-4 in relative
 * L2 norm of the cpu backend's (or no farther than wasm's); and 20 steps from the same seed giving wasm's loss curve
 * (within 1e-3 for 10 steps, 5e-3 for 20, as round-off compounds). Dropout is off (its
 * masks come from different generators per backend). Also: libtorch memory and the tfjs tensor count stay flat
 * over 200 steps.
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

function maxDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** ‖got − ref‖ / ‖ref‖ over all tensors together. */
function relativeL2(got: Map<string, Float32Array>, ref: Map<string, Float32Array>): number {
  let d = 0, n = 0;
  for (const [k, r] of ref) {
    const g = got.get(k)!;
    for (let i = 0; i < r.length; i++) {
      d += (g[i] - r[i]) ** 2;
      n += r[i] ** 2;
    }
  }
  return Math.sqrt(d / Math.max(n, 1e-30));
}

interface StepRecord {
  loss: number;
  grads: Map<string, Float32Array>;
  updated: Map<string, Float32Array>;
  curve: number[];
}

async function record(family: string, preset: string, batchSize: number, steps: number): Promise<StepRecord> {
  // (the cpu reference runs 1 step.)
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
      // lr 1e-4: round-off (wasm's gradients sit 3e-4 from cpu's) grows less over the 20 updates than at 1e-3.
      curve.push((await step(batch(s), s, 1e-4)).loss);
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
    await tf.setBackend("cpu");
    const cpu = await record(family, preset, batch, 1);
    await useWasm();
    const ref = await record(family, preset, batch, 20);
    await activateTorch("cpu");
    const got = await record(family, preset, batch, 20);
    await useWasm();
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-4 * Math.abs(ref.loss), `loss ${got.loss} vs ${ref.loss}`);
    assert.deepEqual([...got.grads.keys()].sort(), [...ref.grads.keys()].sort());
    const globalMax = Math.max(...[...cpu.grads.values()].map(maxAbs));
    const gradL2 = { torch: relativeL2(got.grads, cpu.grads), wasm: relativeL2(ref.grads, cpu.grads) };
    const verbose = Deno.env.get("STRATA_TEST_VERBOSE") !== undefined;
    if (verbose) {
      console.log(
        `gradients, relative L2 to cpu: torch ${gradL2.torch.toExponential(2)}, wasm ${gradL2.wasm.toExponential(2)}`,
      );
    }
    // ConCLR's contrastive gradients are ill-conditioned in float32: wasm itself lands 1.6e-3 from cpu there.
    assert.ok(
      gradL2.torch <= Math.max(1e-4, 2 * gradL2.wasm),
      `gradients: relative L2 difference to cpu ${gradL2.torch.toExponential(2)} (wasm's ${
        gradL2.wasm.toExponential(2)
      })`,
    );
    for (const [name, c] of cpu.grads) {
      const torch = maxDiff(got.grads.get(name)!, c), wasm = maxDiff(ref.grads.get(name)!, c);
      // Round-off scale: 1e-4 of the tensor's largest gradient, wasm's own distance from cpu, and a floor for
      // tensors whose exact gradient is zero (conv biases before BatchNorm).
      const allowed = Math.max(1e-4, 2 * gradL2.wasm) * maxAbs(c) + 3 * wasm + 1e-6 * globalMax;
      if (verbose) {
        console.log(
          `${name}: max ${maxAbs(c).toExponential(2)} torch ${torch.toExponential(2)} wasm ${wasm.toExponential(2)}`,
        );
      }
      assert.ok(
        torch <= allowed,
        `gradient ${name}: torch−cpu ${torch.toExponential(2)}, wasm−cpu ${wasm.toExponential(2)}`,
      );
    }
    // Adam's first step moves every weight by about lr whatever its gradient's size, so round-off in near-zero
    // gradients shows in the weights: they are compared with the cpu backend's step (wasm's is printed).
    const weights = { torch: relativeL2(got.updated, cpu.updated), wasm: relativeL2(ref.updated, cpu.updated) };
    if (verbose) {
      console.log(
        `updated weights, relative L2 to cpu: torch ${weights.torch.toExponential(2)}, wasm ${
          weights.wasm.toExponential(2)
        }`,
      );
    }
    assert.ok(
      weights.torch <= Math.max(1e-4, 2 * weights.wasm),
      `updated weights: relative L2 difference to cpu ${weights.torch.toExponential(2)} (wasm's ${
        weights.wasm.toExponential(2)
      })`,
    );
    // Round-off compounds over updates (wasm's own gradients sit 3e-4 from the cpu backend's on ABINet): the first
    // 10 losses within 1e-3, all 20 within 5e-3.
    got.curve.forEach((l, i) => {
      const rel = Math.abs(l - ref.curve[i]) / Math.abs(ref.curve[i]);
      assert.ok(
        rel <= (i < 10 ? 1e-3 : 5e-3),
        `step ${i + 1}: ${l} vs ${ref.curve[i]} (relative ${rel.toExponential(1)})`,
      );
    });
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
