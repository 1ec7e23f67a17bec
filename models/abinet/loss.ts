/**
 * ABINet's vision loss: cross-entropy over each word's positions up to its length including the EOS.
 *
 * For sample b with `lengths[b]` = characters + 1 (capped at T), the valid positions are
 * `t < lengths[b]`; the loss is the mean of `−log softmax(logits[b, t])[labels[b, t]]` over all valid
 * positions of the batch (positions pooled across samples, so longer words weigh more — as ABINet
 * flattens the valid positions of all samples before its soft cross-entropy with one-hot targets and
 * no label smoothing).
 */
import * as tf from "@tensorflow/tfjs";

/** Float mask `[B, T]`: 1 where `t < lengths[b]`. Plain data, no tensors. */
export function lengthMask(lengths: Int32Array, positions: number): Float32Array {
  const mask = new Float32Array(lengths.length * positions);
  lengths.forEach((len, b) => mask.fill(1, b * positions, b * positions + Math.min(Math.max(len, 0), positions)));
  return mask;
}

/** `logits` `[B, T, C]`, `labels` `[B·T]` class indices, `lengths` `[B]` → scalar mean CE. */
export function visionCrossEntropy(logits: tf.Tensor3D, labels: Int32Array, lengths: Int32Array): tf.Scalar {
  const [b, t, c] = logits.shape;
  if (labels.length !== b * t) {
    throw new Error(`models/abinet/loss.ts: ${labels.length} labels for [${b}, ${t}] logits`);
  }
  if (lengths.length !== b) throw new Error(`models/abinet/loss.ts: ${lengths.length} lengths for a batch of ${b}`);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= c) {
      throw new Error(
        `models/abinet/loss.ts: sample ${Math.floor(i / t)} position ${i % t}: class ${labels[i]} ∉ [0, ${c})`,
      );
    }
  }
  const maskData = lengthMask(lengths, t);
  const count = maskData.reduce((a, v) => a + v, 0);
  return tf.tidy(() => {
    // oneHot in int32 then cast: wasm's float32 oneHot is broken in tfjs 4.22.
    const target = tf.cast(tf.oneHot(tf.tensor1d(labels, "int32"), c), "float32");
    const logp = tf.logSoftmax(tf.reshape(logits, [b * t, c]));
    const nll = tf.neg(tf.sum(tf.mul(target, logp), 1)); // [B·T]
    return tf.div(tf.sum(tf.mul(nll, tf.tensor1d(maskData))), Math.max(count, 1)) as tf.Scalar;
  });
}

/**
 * Targets `[B·T·C]` for a soft cross-entropy: one-hot rows, or with `smoothing` > 0 ABINet's random label
 * smoothing (`prob_smooth_label`, applied per position): δ ~ U(0, smoothing), noise ~ U(0, 1)^C scaled to sum
 * δ, target = one_hot·(1 − δ) + noise. `random` gives U[0, 1) draws (the training step's seeded source).
 */
export function smoothedTargets(
  labels: Int32Array,
  numClasses: number,
  smoothing: number,
  random: () => number,
): Float32Array {
  const out = new Float32Array(labels.length * numClasses);
  for (let i = 0; i < labels.length; i++) {
    const row = out.subarray(i * numClasses, (i + 1) * numClasses);
    if (labels[i] < 0 || labels[i] >= numClasses) {
      throw new Error(`models/abinet/loss.ts: label ${labels[i]} at flat position ${i} ∉ [0, ${numClasses})`);
    }
    if (smoothing <= 0) {
      row[labels[i]] = 1;
      continue;
    }
    const delta = random() * smoothing;
    let sum = 0;
    for (let c = 0; c < numClasses; c++) sum += row[c] = random();
    for (let c = 0; c < numClasses; c++) row[c] = row[c] / sum * delta;
    row[labels[i]] += 1 - delta;
  }
  return out;
}

/**
 * ABINet's soft cross-entropy over the valid positions (`t < lengths[b]`): mean over the pooled valid
 * positions of `−Σ_c target·log softmax(logits)`. `targets` is `[B·T·C]` (see `smoothedTargets`).
 */
export function softCrossEntropy(logits: tf.Tensor3D, targets: Float32Array, lengths: Int32Array): tf.Scalar {
  const [b, t, c] = logits.shape;
  if (targets.length !== b * t * c) {
    throw new Error(`models/abinet/loss.ts: ${targets.length} target values for [${b}, ${t}, ${c}] logits`);
  }
  if (lengths.length !== b) throw new Error(`models/abinet/loss.ts: ${lengths.length} lengths for a batch of ${b}`);
  const maskData = lengthMask(lengths, t);
  const count = maskData.reduce((a, v) => a + v, 0);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(tf.reshape(logits, [b * t, c]));
    const nll = tf.neg(tf.sum(tf.mul(tf.tensor2d(targets, [b * t, c]), logp), 1));
    return tf.div(tf.sum(tf.mul(nll, tf.tensor1d(maskData))), Math.max(count, 1)) as tf.Scalar;
  });
}
