/**
 * A tiny throwaway model family for tests of the training code (conv 3×3 stride 2 → ReLU → running-mean
 * buffer → dropout → dense → [B, T, C] logits). Registered as `strata_test_tiny` when imported.
 */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batch.ts";
import { type Recognizer, registerModelFamily, type TrainingContext } from "../models/recognizer.ts";
import * as s from "../pipeline/schema.ts";

export const tinyConfig = s.object({
  height: s.integer({ min: 2, default: 8 }),
  width: s.integer({ min: 2, default: 32 }),
  in_channels: s.integer({ min: 1, default: 3 }),
  channels: s.integer({ min: 1, default: 4 }),
  max_length: s.integer({ min: 1, default: 25 }),
  dropout: s.number({ min: 0, max: 0.9, default: 0.1 }),
});
export type TinyConfig = typeof tinyConfig extends s.ObjectSchema<infer T> ? T : never;

/** Masked cross-entropy over positions < length (characters + EOS), averaged over those positions. */
export function maskedCrossEntropy(logits: tf.Tensor3D, batch: Batch): tf.Scalar {
  return tf.tidy(() => {
    const [b, t, c] = logits.shape;
    const labels = tf.tensor2d(batch.labels, [b, t], "int32");
    const onehot = tf.cast(tf.oneHot(labels, c), "float32");
    const nll = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1));
    const pos = tf.range(0, t, 1, "int32").reshape([1, t]);
    const mask = tf.cast(tf.less(pos, tf.tensor2d(batch.lengths, [b, 1], "int32")), "float32");
    return tf.div(tf.sum(tf.mul(nll, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}

function create(config: TinyConfig, seed: number, numClasses: number): Recognizer {
  const positions = config.max_length + 1;
  const h = Math.ceil(config.height / 2), w = Math.ceil(config.width / 2);
  const features = h * w * config.channels;
  const weights = tf.tidy(() =>
    new Map<string, tf.Variable>([ // tidy disposes the initial values only
      [
        "conv.weight",
        tf.variable(
          tf.randomUniform([3, 3, config.in_channels, config.channels], -0.3, 0.3, "float32", seed),
          true,
          `tiny_conv_w_${seed}_${Math.random()}`,
        ),
      ],
      ["conv.bias", tf.variable(tf.zeros([config.channels]), true, `tiny_conv_b_${Math.random()}`)],
      [
        "fc.weight",
        tf.variable(
          tf.randomUniform([features, positions * numClasses], -0.05, 0.05, "float32", seed + 1),
          true,
          `tiny_fc_w_${Math.random()}`,
        ),
      ],
      ["fc.bias", tf.variable(tf.zeros([positions * numClasses]), true, `tiny_fc_b_${Math.random()}`)],
    ]) as unknown as tf.TensorContainer
  ) as unknown as Map<string, tf.Variable>;
  const buffers = new Map<string, tf.Variable>([
    ["conv.running_mean", tf.tidy(() => tf.variable(tf.zeros([config.channels]), false, `tiny_rm_${Math.random()}`))],
  ]);
  const W = (k: string) => weights.get(k)!;
  const features2d = (images: tf.Tensor4D) =>
    tf.relu(tf.add(tf.conv2d(images, W("conv.weight") as tf.Tensor4D, 2, "same"), W("conv.bias")));
  const head = (f: tf.Tensor, b: number) =>
    tf.reshape(tf.add(tf.matMul(tf.reshape(f, [b, features]), W("fc.weight") as tf.Tensor2D), W("fc.bias")), [
      b,
      positions,
      numClasses,
    ]) as tf.Tensor3D;
  return {
    family: "strata_test_tiny",
    config: config as unknown as Record<string, unknown>,
    positions,
    numClasses,
    weights,
    buffers,
    predict(images) {
      return {
        logits: tf.tidy(() => head(tf.sub(features2d(images), buffers.get("conv.running_mean")!), images.shape[0])),
      };
    },
    trainingLoss(batch: Batch, images: tf.Tensor4D, ctx: TrainingContext) {
      const f = features2d(images);
      const rm = buffers.get("conv.running_mean")!;
      rm.assign(tf.tidy(() => tf.add(tf.mul(rm, 0.9), tf.mul(tf.mean(f, [0, 1, 2]), 0.1))));
      let x = tf.sub(f, rm);
      if (config.dropout > 0) x = tf.dropout(x, config.dropout, undefined, Math.floor(ctx.random() * 2 ** 31));
      const loss = maskedCrossEntropy(head(x, images.shape[0]), batch);
      return { loss, parts: { ce: loss } };
    },
    dispose() {
      for (const v of [...weights.values(), ...buffers.values()]) v.dispose();
    },
  };
}

export const tinyFamily = registerModelFamily({
  name: "strata_test_tiny",
  description: "test-only tiny conv + dense recognizer",
  config: tinyConfig,
  create,
  module: import.meta.url,
});
