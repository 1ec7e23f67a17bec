/**
 * Layers in PyTorch's parametrisation (names and semantics), computing in tfjs layouts: NHWC feature
 * maps, HWIO conv filters, `[in, out]` linear kernels. Every `apply` is a pure function of its inputs
 * and the variables (plus BatchNorm's running-statistics update in train mode), so it can run inside
 * a gradient scope.
 */
import * as tf from "@tensorflow/tfjs";
import { deviceDropoutMask, fusedBatchNormTrain, fusedLayerNorm } from "../../backend/torch/fused.ts";
import { deriveSeed } from "./rng.ts";
import { fanIn, type Initializer, ones, type Scope, torchDefaultBias, torchDefaultWeight, zeros } from "./params.ts";

/** Mode of one forward pass. */
export interface ForwardContext {
  /** Train mode: dropout active, BatchNorm on batch statistics with running-statistics update. */
  readonly training: boolean;
  /** Seeds for dropout masks, one per call (train mode). */
  nextSeed(): number;
}

export const EVAL: ForwardContext = {
  training: false,
  nextSeed: () => 0,
};

/** Train mode whose dropout masks are a function of `seed` and the call order only. */
export function trainContext(seed: number): ForwardContext {
  let calls = 0;
  return { training: true, nextSeed: () => deriveSeed(seed, calls++) };
}

/** Inverted dropout (PyTorch semantics: zero with probability `rate`, scale the rest by 1/(1-rate)). */
export function dropout<T extends tf.Tensor>(x: T, rate: number, ctx: ForwardContext): T {
  if (!ctx.training || rate <= 0) return x;
  const seed = ctx.nextSeed();
  // On the torch backend the mask is drawn on the device: tfjs draws it on the host and uploads it.
  const mask = deviceDropoutMask(x.shape, rate, seed);
  if (mask) return tf.mul(x, mask) as T;
  return tf.dropout(x, rate, undefined, seed) as T;
}

export interface Conv2dOptions {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride?: number | [number, number];
  /** Symmetric zero padding, as PyTorch's `padding` (not tfjs "same"). */
  padding?: number;
  bias?: boolean;
  weightInit?: Initializer;
}

/** `nn.Conv2d`: `weight` (OIHW in PyTorch, HWIO here) and optional `bias`. */
export class Conv2d {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  readonly stride: [number, number];
  readonly padding: number;

  constructor(scope: Scope, readonly opts: Conv2dOptions) {
    const shape = [opts.outChannels, opts.inChannels, opts.kernel, opts.kernel];
    this.weight = scope.weight("weight", shape, "conv", opts.weightInit ?? torchDefaultWeight);
    if (opts.bias ?? true) {
      this.bias = scope.weight("bias", [opts.outChannels], "plain", torchDefaultBias(fanIn(shape)));
    }
    const s = opts.stride ?? 1;
    this.stride = typeof s === "number" ? [s, s] : s;
    this.padding = opts.padding ?? 0;
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    const p = this.padding;
    let y: tf.Tensor4D;
    if (p === 0) {
      y = tf.conv2d(x, this.weight as tf.Tensor4D, this.stride, "valid");
    } else if (this.stride[0] === this.stride[1]) {
      y = tf.conv2d(x, this.weight as tf.Tensor4D, this.stride, p);
    } else {
      // tfjs 4.22 sizes the output of a numeric-pad conv with the height stride on both axes, so
      // unequal strides pad explicitly and convolve "valid".
      const padded = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]);
      y = tf.conv2d(padded, this.weight as tf.Tensor4D, this.stride, "valid");
    }
    return this.bias ? tf.add(y, this.bias) : y;
  }
}

/** `nn.BatchNorm2d` over the channel (last) axis of NHWC maps; eps 1e-5, momentum 0.1. */
export class BatchNorm2d {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;

  constructor(scope: Scope, readonly channels: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    this.weight = scope.weight("weight", [channels], "plain", ones);
    this.bias = scope.weight("bias", [channels], "plain", zeros);
    this.runningMean = scope.buffer("running_mean", [channels], zeros);
    this.runningVar = scope.buffer("running_var", [channels], ones);
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    if (!ctx.training) {
      // y = (x - mean) / sqrt(var + eps) * w + b, folded into one scale and shift per channel.
      const scale = tf.mul(this.weight, tf.rsqrt(tf.add(this.runningVar, this.eps)));
      const shift = tf.sub(this.bias, tf.mul(this.runningMean, scale));
      return tf.add(tf.mul(x, scale), shift);
    }
    const { y, mean, variance } = batchNormTrain(x, this.weight, this.bias, this.eps);
    // Running statistics use the unbiased variance, as PyTorch does.
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    const m = this.momentum;
    const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
    this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
    this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(unbiased, m)));
    return y;
  }
}

/**
 * Train-mode batch normalisation over all axes but the last, with the analytic gradient
 * (`dx = w·rstd · (dy − mean(dy) − x̂·mean(dy·x̂))`, `dw = Σ dy·x̂`, `db = Σ dy`) in one custom op:
 * about half the memory passes of differentiating the composed ops. The batch `mean` and biased
 * `variance` are also returned, for the running statistics (computed beside the op: tensors made
 * inside a custom op's forward do not outlive it; being off the loss path, they cost no backward).
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  weight: tf.Tensor,
  bias: tf.Tensor,
  eps: number,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const fused = fusedBatchNormTrain(x, weight, bias, eps);
  if (fused) return fused;
  const axes = [0, 1, 2];
  const n = x.shape[0] * x.shape[1] * x.shape[2];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, w, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const centered = tf.sub(xIn, tf.mean(xIn, axes));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centered), axes), eps));
    const xhat = tf.mul(centered, rstd);
    save([xhat, rstd, w]);
    return {
      value: tf.add(tf.mul(xhat, w), b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = dy as tf.Tensor;
        const [xh, rs, ww] = saved;
        const db = tf.sum(g, axes);
        const dw = tf.sum(tf.mul(g, xh), axes);
        const inner = tf.sub(tf.sub(g, tf.div(db, n)), tf.mul(xh, tf.div(dw, n)));
        return [tf.mul(inner, tf.mul(ww, rs)), dw, db];
      },
    };
  });
  const y = op(x, weight, bias) as tf.Tensor4D;
  const { mean, variance } = tf.moments(x, axes);
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

export interface LinearOptions {
  weightInit?: Initializer;
  biasInit?: Initializer;
  bias?: boolean;
}

/** `nn.Linear`: `weight` ([out, in] in PyTorch, [in, out] here) and `bias`; applies to the last axis. */
export class Linear {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;

  constructor(scope: Scope, readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    this.weight = scope.weight("weight", [outFeatures, inFeatures], "linear", opts.weightInit ?? torchDefaultWeight);
    if (opts.bias ?? true) {
      this.bias = scope.weight("bias", [outFeatures], "plain", opts.biasInit ?? torchDefaultBias(inFeatures));
    }
  }

  apply<T extends tf.Tensor>(x: T): T {
    const lead = x.shape.slice(0, -1);
    const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
    let y: tf.Tensor = tf.matMul(flat, this.weight as tf.Tensor2D);
    if (this.bias) y = tf.add(y, this.bias);
    return tf.reshape(y, [...lead, this.outFeatures]) as T;
  }
}

/** `nn.LayerNorm` over the last axis, eps 1e-5. */
export class LayerNorm {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(scope: Scope, readonly features: number, readonly eps = 1e-5) {
    this.weight = scope.weight("weight", [features], "plain", ones);
    this.bias = scope.weight("bias", [features], "plain", zeros);
  }

  apply<T extends tf.Tensor>(x: T): T {
    const fused = fusedLayerNorm(x, this.weight, this.bias, this.eps);
    if (fused) return fused;
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), axis, true);
    return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, this.eps))), this.weight), this.bias) as T;
  }
}
