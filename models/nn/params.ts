/**
 * Parameter containers. A `ParamStore` owns every tf.Variable of a model under its PyTorch
 * `state_dict` name; a `Scope` is a name prefix into a store (`scope.child("layer1").child("0")`).
 *
 * Each entry knows its PyTorch layout, so that the model computes in tfjs layouts while
 * checkpoints and fixtures use PyTorch's (see `state.ts`):
 *
 * | layout   | PyTorch                        | stored in the variable (tfjs)      |
 * | -------- | ------------------------------ | ---------------------------------- |
 * | `conv`   | Conv2d weight OIHW `[o,i,h,w]` | conv2d filter HWIO `[h,w,i,o]`     |
 * | `linear` | Linear weight `[out, in]`      | matMul kernel `[in, out]` (= W^T)  |
 * | `plain`  | anything else                  | same shape, same order             |
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Rng } from "./rng.ts";

export type Layout = "plain" | "conv" | "linear";
export type ParamKind = "weight" | "buffer";

export interface ParamEntry {
  readonly name: string;
  readonly kind: ParamKind;
  readonly layout: Layout;
  /** Shape in PyTorch layout. */
  readonly torchShape: readonly number[];
  readonly variable: tf.Variable;
}

/** Produces initial values (PyTorch layout, row-major) for `numel` elements. */
export type Initializer = (rng: Rng, numel: number, torchShape: readonly number[]) => Float32Array;

/** tfjs-layout shape for a PyTorch-layout shape. */
export function tfShape(layout: Layout, torchShape: readonly number[]): number[] {
  if (layout === "conv") {
    const [o, i, h, w] = torchShape;
    return [h, w, i, o];
  }
  if (layout === "linear") return [torchShape[1], torchShape[0]];
  return [...torchShape];
}

/** PyTorch-layout data → tfjs-layout tensor. */
export function fromTorch(layout: Layout, data: Float32Array, torchShape: readonly number[]): tf.Tensor {
  return tf.tidy(() => {
    const t = tf.tensor(data, [...torchShape], "float32");
    if (layout === "conv") return tf.transpose(t, [2, 3, 1, 0]);
    if (layout === "linear") return tf.transpose(t, [1, 0]);
    return t;
  });
}

/** tfjs-layout tensor → PyTorch-layout tensor. */
export function toTorch(layout: Layout, t: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    if (layout === "conv") return tf.transpose(t, [3, 2, 0, 1]);
    if (layout === "linear") return tf.transpose(t, [1, 0]);
    return tf.clone(t);
  });
}

export class ParamStore {
  readonly entries = new Map<string, ParamEntry>();
  /** Trainable variables by name (tfjs layout). */
  readonly weights = new Map<string, tf.Variable>();
  /** Non-trainable state (BatchNorm statistics, positional tables) by name (tfjs layout). */
  readonly buffers = new Map<string, tf.Variable>();

  /** `seed` makes initialisation deterministic; each tensor's stream depends on its name only. */
  constructor(readonly seed: number) {}

  root(): Scope {
    return new Scope(this, "");
  }

  add(name: string, kind: ParamKind, layout: Layout, torchShape: readonly number[], init: Initializer): tf.Variable {
    if (this.entries.has(name)) throw new Error(`models/nn/params.ts: parameter "${name}" defined twice`);
    const numel = torchShape.reduce((a, b) => a * b, 1);
    const values = init(new Rng(deriveSeed(this.seed, name)), numel, torchShape);
    if (values.length !== numel) throw new Error(`models/nn/params.ts: initializer of "${name}" gave ${values.length}`);
    const initial = fromTorch(layout, values, torchShape);
    // No tfjs variable name: those must be unique per process, and several models may coexist.
    const variable = tf.variable(initial, kind === "weight");
    initial.dispose();
    const entry: ParamEntry = { name, kind, layout, torchShape: [...torchShape], variable };
    this.entries.set(name, entry);
    (kind === "weight" ? this.weights : this.buffers).set(name, variable);
    return variable;
  }

  /** Number of trainable scalars. */
  parameterCount(): number {
    let n = 0;
    for (const v of this.weights.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const e of this.entries.values()) e.variable.dispose();
    this.entries.clear();
    this.weights.clear();
    this.buffers.clear();
  }
}

export class Scope {
  constructor(readonly store: ParamStore, readonly prefix: string) {}

  child(name: string | number): Scope {
    return new Scope(this.store, `${this.prefix}${name}.`);
  }

  name(local: string): string {
    return `${this.prefix}${local}`;
  }

  weight(local: string, torchShape: readonly number[], layout: Layout, init: Initializer): tf.Variable {
    return this.store.add(this.name(local), "weight", layout, torchShape, init);
  }

  buffer(local: string, torchShape: readonly number[], init: Initializer): tf.Variable {
    return this.store.add(this.name(local), "buffer", "plain", torchShape, init);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Initializers (PyTorch's defaults, so a fresh model starts like a fresh PyTorch model).

export const constant = (value: number): Initializer => (_rng, n) => new Float32Array(n).fill(value);
export const zeros: Initializer = constant(0);
export const ones: Initializer = constant(1);

export const uniform = (bound: number): Initializer => (rng, n) => {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rng.uniform() - 1) * bound;
  return out;
};

export const normal = (std: number): Initializer => (rng, n) => {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
};

/** fan_in of a PyTorch-layout weight (`[out, in, ...kernel]`). */
export function fanIn(torchShape: readonly number[]): number {
  return torchShape.slice(1).reduce((a, b) => a * b, 1);
}

/** PyTorch's default Linear/Conv weight init, kaiming_uniform(a=√5): U(±1/√fan_in). */
export const torchDefaultWeight: Initializer = (rng, n, shape) => uniform(1 / Math.sqrt(fanIn(shape)))(rng, n, shape);

/** PyTorch's default Linear/Conv bias init: U(±1/√fan_in) of the layer's weight. */
export const torchDefaultBias = (fanInOfWeight: number): Initializer => uniform(1 / Math.sqrt(fanInOfWeight));

/** xavier_uniform: U(±√(6 / (fan_in + fan_out))). */
export const xavierUniform: Initializer = (rng, n, shape) => {
  const fanOut = shape[0] * shape.slice(2).reduce((a, b) => a * b, 1);
  return uniform(Math.sqrt(6 / (fanIn(shape) + fanOut)))(rng, n, shape);
};

/** ResNet conv init: N(0, √(2 / (k·k·out))) (fan_out, ReLU gain). */
export const kaimingNormalFanOut: Initializer = (rng, n, shape) => {
  const fanOut = shape[0] * shape.slice(2).reduce((a, b) => a * b, 1);
  return normal(Math.sqrt(2 / fanOut))(rng, n, shape);
};
