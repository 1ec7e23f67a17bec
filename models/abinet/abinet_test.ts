import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import type { Batch } from "../../data/batch.ts";
import "../mod.ts";
import { EVAL } from "../nn/layers.ts";
import { getModelFamily } from "../recognizer.ts";
import { AbinetModel } from "./abinet.ts";
import { languageLengths } from "./language.ts";
import { TEST_MICRO_CONFIG } from "./test_config.ts";

const create = (config: Record<string, unknown>, seed = 1, numClasses = 37) => {
  const family = getModelFamily("abinet");
  return family.create(family.config.parse(config, []), seed, numClasses) as AbinetModel;
};
const micro = (extra: Record<string, unknown> = {}) => ({
  vision: TEST_MICRO_CONFIG,
  language: { preset: "micro", nhead: 2, ffn: 32 },
  ...extra,
});

function batchOf(images: tf.Tensor4D, words: number[][], positions: number): Batch {
  const b = words.length;
  const labels = new Int32Array(b * positions);
  words.forEach((w, i) => labels.set(w, i * positions));
  return {
    images: images.dataSync() as Float32Array,
    shape: images.shape as [number, number, number, number],
    labels,
    lengths: Int32Array.from(words, (w) => w.length + 1),
    texts: words.map(() => ""),
    indices: words.map((_, i) => i + 1),
  };
}

Deno.test("abinet: parameter counts of the full config vs the official model", async () => {
  await useWasm();
  const model = create({});
  const count = (prefix: string) =>
    [...model.weights].filter(([n]) => n.startsWith(prefix)).reduce((a, [, v]) => a + v.size, 0);
  assert.equal(count("vision."), 23_547_461, "ABINet-Vision");
  assert.equal(count("language."), 12_647_461, "BCN (official 12.6 M)");
  assert.equal(count("alignment."), 543_781, "alignment");
  assert.equal(model.parameterCount(), 36_738_703, "full ABINet (MindOCR: ≈ 36.9 M)");
  console.log(`abinet full: ${model.parameterCount()} parameters (BCN ${count("language.")})`);
  // Official names (ABINetIterModel state_dict).
  const names = [...model.state().keys()];
  for (
    const n of [
      "vision.cls.weight",
      "language.proj.weight",
      "language.model.layers.3.norm3.bias",
      "alignment.w_att.weight",
    ]
  ) {
    assert.ok(names.includes(n), n);
  }
  model.dispose();
});

Deno.test("abinet: iter_size iterations, each feeding the alignment's prediction to the language model", async () => {
  await useWasm();
  const model = create(micro({ iter_size: 2 }), 3);
  const images = tf.randomUniform([2, 16, 32, 3], -1, 1, "float32", 5) as tf.Tensor4D;
  const outputs = model.predictOutputs(images);
  assert.deepEqual([...outputs.keys()], ["vision", "language_1", "alignment_1", "language_2", "alignment_2"]);
  const { logits } = model.predict(images);
  assert.deepEqual([...logits.dataSync()], [...outputs.get("alignment_2")!.dataSync()], "predict = last alignment");
  // Language iteration 2 = BCN(softmax(alignment_1), lengths(alignment_1)).
  const a1 = outputs.get("alignment_1")!;
  const l2 = tf.tidy(() => model.language.apply(tf.softmax(a1) as tf.Tensor3D, languageLengths(a1), EVAL).logits);
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(l2, outputs.get("language_2")!))).dataSync()[0]);
  assert.ok(diff < 1e-5, `language_2 differs by ${diff}`);
  const o3 = tf.tidy(() => model.forward(images, EVAL, 3).iterations.length);
  assert.equal(o3, 3);
  tf.dispose([images, logits, l2, ...outputs.values()]);
  model.dispose();
});

Deno.test("abinet: no gradient reaches the vision weights from the language loss (detach)", async () => {
  await useWasm();
  const images = tf.randomUniform([2, 16, 32, 3], -1, 1, "float32", 7) as tf.Tensor4D;
  const words = [[1, 2, 3], [4, 5]];
  const gradNorms = (config: Record<string, unknown>) => {
    const model = create(config, 4);
    const batch = batchOf(images, words, model.positions);
    const names = [...model.weights.keys()];
    const vars = names.map((n) => model.weights.get(n)!);
    const { value, grads } = tf.variableGrads(
      () => model.trainingLoss(batch, images, { step: 0, random: () => 0.5 }).loss,
      vars,
    );
    const norm = (prefix: string) =>
      tf.tidy(() =>
        names.reduce((a, n, i) => {
          const g = grads[vars[i].name];
          return n.startsWith(prefix) && g ? a + tf.sum(tf.square(g)).dataSync()[0] : a;
        }, 0)
      );
    const out = { vision: norm("vision."), language: norm("language."), alignment: norm("alignment.") };
    tf.dispose([value, ...Object.values(grads)]);
    model.dispose();
    return out;
  };
  const languageOnly = { loss_weights: { vision: 0, language: 1, alignment: 0 } };
  const detached = gradNorms(micro(languageOnly));
  assert.equal(detached.vision, 0, "vision weights get no gradient from the language loss");
  assert.ok(detached.language > 0);
  // The check can fail: without detach the language loss reaches the vision model.
  const attached = gradNorms(
    micro({ ...languageOnly, language: { preset: "micro", nhead: 2, ffn: 32, detach: false } }),
  );
  assert.ok(attached.vision > 0, "without detach the vision weights get a gradient");
  // The alignment loss trains vision and language.
  const aligned = gradNorms(micro({ loss_weights: { vision: 0, language: 0, alignment: 1 } }));
  assert.ok(aligned.vision > 0 && aligned.language > 0 && aligned.alignment > 0);
  images.dispose();
});

Deno.test("abinet: loss = w_v·CE_v + w_l·mean CE_l + w_a·mean CE_a; parts logged", async () => {
  await useWasm();
  const model = create(micro({ iter_size: 2, loss_weights: { vision: 0.5, language: 2, alignment: 1 } }), 9);
  const images = tf.randomUniform([2, 16, 32, 3], -1, 1, "float32", 8) as tf.Tensor4D;
  const batch = batchOf(images, [[1, 2, 3], [4, 5]], model.positions);
  const { loss, parts } = tf.tidy(() => {
    const o = model.trainingLoss(batch, images, { step: 0, random: () => 0.5 });
    return { loss: o.loss, parts: o.parts };
  });
  const p = Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v.dataSync()[0]]));
  assert.deepEqual(Object.keys(p).sort(), ["alignment", "language", "vision"]);
  const expected = 0.5 * p.vision + 2 * p.language + p.alignment;
  assert.ok(Math.abs(loss.dataSync()[0] - expected) < 1e-5);
  tf.dispose([loss, ...Object.values(parts), images]);
  model.dispose();
});

Deno.test("abinet: initFrom vision / language checkpoints; mismatches are errors", async () => {
  await useWasm();
  const vision = getModelFamily("abinet_vision");
  const v = vision.create(vision.config.parse(TEST_MICRO_CONFIG, []), 11, 37);
  const tensors = new Map([...v.weights, ...v.buffers].map(([n, t]) => [n, {
    dtype: "F32" as const,
    shape: [...t.shape],
    data: t.dataSync() as Float32Array,
  }]));
  const model = create(micro(), 12);
  const n = model.initFrom("vision", "abinet_vision", tensors, "v.safetensors");
  assert.equal(n, v.weights.size + v.buffers.size);
  const w = model.weights.get("vision.cls.weight")!.dataSync();
  assert.deepEqual([...w], [...v.weights.get("cls.weight")!.dataSync()]);
  assert.throws(() => model.initFrom("vision", "conclr_vision", tensors, "c.safetensors"), /cannot initialise/);
  assert.throws(() => model.initFrom("language", "abinet_language", tensors, "l.safetensors"), /missing/);
  v.dispose();
  model.dispose();
});
