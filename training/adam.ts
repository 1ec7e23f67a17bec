/**
 * Adam (PyTorch's formulation, no weight decay by default) with an explicit, exactly restorable state: the
 * first and second moments per weight (`exp_avg`, `exp_avg_sq`) and the update count `step`. Bias corrections
 * are computed in float64 from `step`, so a restored optimiser continues bit-for-bit.
 *
 *   m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 */
import * as tf from "@tensorflow/tfjs";
import { torchBackend } from "../backend/torch/mod.ts";

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export class Adam {
  step = 0;
  readonly expAvg = new Map<string, tf.Variable>();
  readonly expAvgSq = new Map<string, tf.Variable>();
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;

  constructor(readonly params: ReadonlyMap<string, tf.Variable>, opts: AdamOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-8;
    for (const [name, p] of params) {
      // tidy disposes the zeros but not the variables.
      this.expAvg.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false, undefined, "float32")));
      this.expAvgSq.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false, undefined, "float32")));
    }
  }

  /** One update with learning rate `lr`; weights without a gradient are left untouched (as PyTorch does). */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.step++;
    const { beta1: b1, beta2: b2, epsilon } = this;
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, this.step));
    tf.tidy(() => {
      const c = {
        b1: tf.scalar(b1),
        nb1: tf.scalar(1 - b1),
        b2: tf.scalar(b2),
        nb2: tf.scalar(1 - b2),
        bc2: tf.scalar(bc2Sqrt),
        eps: tf.scalar(epsilon),
        size: tf.scalar(lr / bc1),
      };
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) continue;
        const m = this.expAvg.get(name)!, v = this.expAvgSq.get(name)!;
        m.assign(tf.add(tf.mul(m, c.b1), tf.mul(g, c.nb1)));
        v.assign(tf.add(tf.mul(v, c.b2), tf.mul(tf.square(g), c.nb2)));
        const denom = tf.add(tf.div(tf.sqrt(v), c.bc2), c.eps);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), c.size)));
      }
    });
  }

  /**
   * Clips `grads` by their global norm (see clipByGlobalNorm; `maxNorm` ≤ 0: no clipping) and applies one
   * update. Returns the norm before clipping (the caller disposes it). On the torch backend both run as one
   * fused call over all weights.
   */
  clipAndApply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, maxNorm: number): tf.Scalar {
    const torch = torchBackend();
    if (torch) {
      const names = [...this.params.keys()].filter((n) => grads.has(n));
      if (names.length > 0) {
        this.step++;
        return torch.adamClip(
          names.map((n) => this.params.get(n)!),
          names.map((n) => grads.get(n)!),
          names.map((n) => this.expAvg.get(n)!),
          names.map((n) => this.expAvgSq.get(n)!),
          { lr, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, step: this.step, maxNorm },
        );
      }
    }
    const clipped = clipByGlobalNorm(grads, maxNorm);
    try {
      this.apply(clipped.grads, lr);
    } finally {
      tf.dispose([...clipped.grads.values()]);
    }
    return clipped.norm;
  }

  dispose(): void {
    for (const v of [...this.expAvg.values(), ...this.expAvgSq.values()]) v.dispose();
    this.expAvg.clear();
    this.expAvgSq.clear();
  }
}

/**
 * Clips gradients by their global L2 norm as torch.nn.utils.clip_grad_norm_ does (coefficient
 * max / (norm + 1e-6), applied when below 1). Returns new gradients (the caller disposes both sets) and the
 * norm before clipping as a scalar tensor. `maxNorm` ≤ 0 disables clipping (the norm is still computed).
 */
export function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: tf.Scalar } {
  const keys = [...grads.keys()];
  const { list, norm } = tf.tidy(() => {
    const gs = [...grads.values()];
    const norm = tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
    if (maxNorm <= 0) return { list: gs.map((g) => tf.clone(g)), norm };
    const coef = tf.minimum(tf.scalar(1), tf.div(tf.scalar(maxNorm), tf.add(norm, tf.scalar(1e-6))));
    return { list: gs.map((g) => tf.mul(g, coef)), norm };
  });
  // tidy does not look inside Maps, so the map is built outside it.
  return { grads: new Map(keys.map((k, i) => [k, list[i]])), norm };
}
