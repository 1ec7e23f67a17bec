import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batch.ts";
import { charsetFor } from "../data/charset.ts";
import type { Recognizer } from "../models/recognizer.ts";
import { type EvalSample, evaluateModel } from "./evaluation.ts";

Deno.test("evaluateModel: a 62-class model's predictions are scored under protocol 36", async () => {
  await tf.setBackend("cpu");
  const cs62 = charsetFor(62);
  // Always predicts "Ab" then EOS (one-hot-ish logits over 3 positions).
  const word = [cs62.classOf("A"), cs62.classOf("b"), 0];
  const logits = (b: number) =>
    tf.tidy(() =>
      tf.mul(tf.oneHot(tf.tensor2d(Array.from({ length: b }, () => word), [b, 3], "int32"), cs62.numClasses), 10)
    );
  const model = { predict: (x: tf.Tensor4D) => ({ logits: logits(x.shape[0]) }) } as unknown as Recognizer;
  const batch: Batch = {
    images: new Float32Array(2 * 4),
    shape: [2, 2, 2, 1],
    labels: new Int32Array(6),
    lengths: new Int32Array(2),
    texts: ["ab", "abc"],
    indices: [3, 9],
  };
  async function* batches() {
    yield await Promise.resolve(batch);
  }
  const samples: EvalSample[] = [];
  const m = await evaluateModel(model, batches(), cs62, charsetFor(36), (s) => void samples.push(s));
  assert.deepEqual(samples.map((s) => [s.index, s.label, s.prediction, s.correct]), [
    [3, "ab", "ab", true],
    [9, "abc", "ab", false],
  ]);
  assert.equal(m.word_accuracy, 0.5);
  assert.equal(m.ccr, 4 / 5);
  // Without a protocol the case-sensitive prediction counts as wrong.
  const raw = await evaluateModel(model, batches(), cs62);
  assert.equal(raw.word_accuracy, 0);
});

Deno.test("evaluateModel: every output of a multi-output model is scored, with rotation and decoding options", async () => {
  await tf.setBackend("cpu");
  const cs = charsetFor(36);
  const logitsOf = (text: string, b: number) =>
    tf.tidy(() => {
      const ids = [...text].map((c) => cs.classOf(c)).concat([0]);
      return tf.mul(tf.oneHot(tf.tensor2d(Array.from({ length: b }, () => ids), [b, ids.length], "int32"), 37), 10);
    }) as tf.Tensor3D;
  const seen: { opts: unknown; firstPixel: number }[] = [];
  const model = {
    family: "two_outputs",
    predict: () => {
      throw new Error("predictOutputs must be used when the model has it");
    },
    predictOutputs: (x: tf.Tensor4D, opts?: unknown) => {
      seen.push({ opts, firstPixel: x.arraySync()[0][0][0][0] });
      return new Map([["vision", logitsOf("a", x.shape[0])], ["alignment_1", logitsOf("ab", x.shape[0])]]);
    },
  } as unknown as Recognizer;
  // One 2×2 image with pixels 1..4: a 180° turn puts 4 first.
  const batch: Batch = {
    images: Float32Array.from([1, 2, 3, 4]),
    shape: [1, 2, 2, 1],
    labels: new Int32Array(3),
    lengths: new Int32Array(1),
    texts: ["ab"],
    indices: [1],
  };
  async function* batches() {
    yield await Promise.resolve(batch);
  }
  const before = tf.memory().numTensors;
  const m = await evaluateModel(model, batches(), cs, cs, undefined, { rotation: 180, predict: { refineIters: 2 } });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(seen, [{ opts: { refineIters: 2 }, firstPixel: 4 }]);
  // The main metrics are the last output's.
  assert.equal(m.word_accuracy, 1);
  assert.equal(m.outputs?.vision.word_accuracy, 0);
  assert.equal(m.outputs?.alignment_1.word_accuracy, 1);
  await evaluateModel(model, batches(), cs, cs);
  assert.deepEqual(seen[1], { opts: undefined, firstPixel: 1 });
});
