import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import type { Batch } from "../../data/batch.ts";
import "../mod.ts";
import { getModelFamily, type Recognizer } from "../recognizer.ts";
import "./mod.ts";
import { TEST_MICRO_CONFIG } from "../abinet/test_config.ts";

/** abinet_vision's test config with a small projection head. */
const MICRO = { ...TEST_MICRO_CONFIG, projection_dim: 8 };

function create(family: string, config: Record<string, unknown>, seed: number, numClasses = 8): Recognizer {
  const f = getModelFamily(family);
  return f.create(f.config.parse(config, []), seed, numClasses);
}

function microBatch(): Batch {
  const b = 4, t = 6;
  const labels = new Int32Array(b * t);
  const words = [[1, 2], [3], [4, 5, 6], [2, 2, 1, 7]];
  words.forEach((w, i) => labels.set(w, i * t));
  const lengths = Int32Array.from(words, (w) => w.length + 1);
  const images = new Float32Array(b * 16 * 32 * 3);
  for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 0.37) * Math.cos(i * 0.011);
  return { images, shape: [b, 16, 32, 3], labels, lengths, texts: ["ab", "c", "def", "bbag"], indices: [1, 2, 3, 4] };
}

/** Deterministic per-step random source, as the training loop derives one from (seed, step). */
function stepRandom(step: number): () => number {
  let s = (step * 2654435761 + 12345) >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

Deno.test("conclr_vision: config defaults, weight names, predict as abinet_vision", async () => {
  await useWasm();
  const family = getModelFamily("conclr_vision");
  const model = create("conclr_vision", { preset: "tiny" }, 7);
  assert.equal(model.family, "conclr_vision");
  for (const [k, v] of Object.entries({ projection: "mlp", projection_dim: 128, temperature: 2, alpha: 0.2 })) {
    assert.equal(model.config[k], v, k);
  }
  assert.deepEqual(model.config.view_weights, [1, 0.5, 0.5]);
  assert.equal(model.config.d_model, 128);
  assert.throws(() => family.config.parse({ projection: "conv" }, []), /projection/);
  // The stored config (checkpoint metadata) parses back to itself.
  assert.deepEqual(family.config.parse(structuredClone(model.config), []), model.config);
  assert.throws(() => family.config.parse({ view_weights: [1, 1] }, []), /view_weights/);
  // Same vision names as abinet_vision, plus the projection head.
  const abinet = create("abinet_vision", { preset: "tiny" }, 7);
  const extra = [...model.weights.keys()].filter((k) => !abinet.weights.has(k));
  assert.deepEqual(extra, [
    "projection_head.head.0.weight",
    "projection_head.head.0.bias",
    "projection_head.head.2.weight",
    "projection_head.head.2.bias",
  ]);
  assert.ok([...abinet.weights.keys()].every((k) => model.weights.has(k)));
  assert.deepEqual([...model.buffers.keys()], [...abinet.buffers.keys()]);
  assert.deepEqual(model.weights.get("projection_head.head.2.weight")!.shape, [128, 128]); // [in, out] in tfjs layout
  // Same seed → same vision weights → same predictions as abinet_vision.
  const images = tf.randomUniform([1, 32, 128, 3], -1, 1, "float32", 5) as tf.Tensor4D;
  const a = model.predict(images).logits, b = abinet.predict(images).logits;
  assert.deepEqual(a.shape, [1, 26, 8]);
  assert.deepEqual(a.dataSync(), b.dataSync());
  tf.dispose([images, a, b]);
  abinet.dispose();
  model.dispose();
  const linear = create("conclr_vision", { ...MICRO, projection: "linear" }, 1);
  assert.ok(linear.weights.has("projection_head.head.weight"));
  linear.dispose();
});

function descends(backend: string) {
  const model = create("conclr_vision", MICRO, 3);
  const batch = microBatch();
  const images = tf.tensor4d(batch.images, batch.shape);
  const opt = tf.train.adam(1e-2);
  const vars = [...model.weights.values()];
  const losses: number[] = [];
  let tensors = 0;
  let parts: Record<string, number> = {};
  for (let step = 0; step < 8; step++) {
    // A fixed step for the data transform so the batch (and its ConAug views) stays the same.
    const cost = opt.minimize(
      () => {
        const out = model.trainingLoss(batch, images, { step: 0, random: stepRandom(0) });
        if (step === 0) parts = Object.fromEntries(Object.entries(out.parts).map(([k, v]) => [k, v.dataSync()[0]]));
        return out.loss;
      },
      true,
      vars,
    );
    losses.push(cost!.dataSync()[0]);
    cost!.dispose();
    if (step === 1) tensors = tf.memory().numTensors;
  }
  assert.equal(tf.memory().numTensors, tensors, "no tensor leak across steps");
  console.log(`  ${backend}: loss ${losses.map((l) => l.toFixed(3)).join(" → ")}`);
  console.log(`  ${backend}: step-0 parts ${JSON.stringify(parts)}`);
  assert.deepEqual(Object.keys(parts).sort(), ["ce_aug1", "ce_aug2", "ce_original", "contrastive"]);
  const recombined = parts.ce_original + 0.5 * parts.ce_aug1 + 0.5 * parts.ce_aug2 + 0.2 * parts.contrastive;
  assert.ok(Math.abs(recombined - losses[0]) < 1e-4 * Math.abs(losses[0]), `${recombined} vs ${losses[0]}`);
  assert.ok(parts.contrastive > 0, "the two views share characters, so the contrastive term is positive");
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses[7] < losses[0] * 0.9, `loss should fall: ${losses}`);
  // Same step and random source → same views and dropout masks → same loss.
  const again = () =>
    tf.tidy(() => model.trainingLoss(batch, images, { step: 3, random: stepRandom(3) }).loss.dataSync()[0]);
  assert.equal(again(), again());
  tf.dispose(images);
  opt.dispose();
  model.dispose();
}

Deno.test("conclr_vision: loss falls over a few Adam steps, tensor count flat (wasm, else cpu)", async () => {
  // wasm is ~10× faster here; cpu (slow convolutions) only when backend/ has not registered the wasm
  // gradient kernels.
  await useWasm();
  if (tf.getKernel("Conv2DBackpropFilter", "wasm")) return descends("wasm");
  console.log("note: wasm lacks Conv2DBackpropFilter (backend/ kernels not registered); running on cpu");
  await tf.setBackend("cpu");
  descends("cpu");
});
