/**
 * Model-side entry points of the torch backend's fused kernels. Each returns undefined when the current
 * backend is not torch, so a layer falls back to its composed tfjs ops (and other backends are unchanged).
 */
import * as tf from "@tensorflow/tfjs";

function onTorch(): boolean {
  return tf.getBackend() === "torch";
}

/** LayerNorm over the last axis in one kernel (forward and backward). */
export function fusedLayerNorm<T extends tf.Tensor>(
  x: T,
  weight: tf.Tensor,
  bias: tf.Tensor,
  eps: number,
): T | undefined {
  if (!onTorch()) return undefined;
  const [y] = tf.engine().runKernel("StrataLayerNorm", { x, weight, bias }, { eps }) as tf.Tensor[];
  return y as T;
}

/** Train-mode BatchNorm over all axes but the last: y, batch mean and biased variance. */
export function fusedBatchNormTrain(
  x: tf.Tensor4D,
  weight: tf.Tensor,
  bias: tf.Tensor,
  eps: number,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } | undefined {
  if (!onTorch()) return undefined;
  const [y, mean, variance, invstd] = tf.engine().runKernel("StrataBatchNormTrain", { x, weight, bias }, {
    eps,
  }) as tf.Tensor[];
  invstd.dispose();
  return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/**
 * A dropout keep-mask scaled by 1/(1 − rate), drawn on the device from `seed` (ATen's generator: deterministic
 * per seed and device, but not the same stream as tfjs's host generator).
 */
export function deviceDropoutMask(shape: number[], rate: number, seed: number): tf.Tensor | undefined {
  if (!onTorch()) return undefined;
  return tf.engine().runKernel("StrataDropoutMask", {}, { shape, rate, seed }) as tf.Tensor;
}
