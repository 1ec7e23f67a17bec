/**
 * `nn.MultiheadAttention` in the torch 1.x form that ABINet's transformer uses: one packed
 * `in_proj_weight` `[3E, E]` (rows W_q; W_k; W_v) with `in_proj_bias` `[3E]`, an `out_proj` Linear,
 * head h on features `h·E/H … (h+1)·E/H`, q scaled by `(E/H)^-0.5` after its bias, dropout on the
 * attention weights in train mode. Tensors here are batch-first `[B, L, E]` (PyTorch's module is
 * sequence-first; only the layout of activations differs, not the numbers).
 */
import * as tf from "@tensorflow/tfjs";
import { dropout, type ForwardContext, Linear } from "./layers.ts";
import { type Scope, xavierUniform, zeros } from "./params.ts";

export interface AttentionResult {
  /** `[B, L, E]`. */
  output: tf.Tensor3D;
  /** `[B, H, L, S]` softmax weights (before dropout), when asked for. */
  weights?: tf.Tensor4D;
}

export class MultiheadAttention {
  readonly inProjWeight: tf.Variable;
  readonly inProjBias: tf.Variable;
  readonly outProj: Linear;
  readonly headDim: number;

  constructor(scope: Scope, readonly embedDim: number, readonly numHeads: number, readonly dropoutRate = 0) {
    if (embedDim % numHeads !== 0) {
      throw new Error(`models/nn/attention.ts: embed dim ${embedDim} is not divisible by ${numHeads} heads`);
    }
    this.headDim = embedDim / numHeads;
    // Stored as the [E, 3E] kernel (columns q | k | v).
    this.inProjWeight = scope.weight("in_proj_weight", [3 * embedDim, embedDim], "linear", xavierUniform);
    this.inProjBias = scope.weight("in_proj_bias", [3 * embedDim], "plain", zeros);
    this.outProj = new Linear(scope.child("out_proj"), embedDim, embedDim, { biasInit: zeros });
  }

  #split(x: tf.Tensor2D, batch: number, length: number): tf.Tensor3D {
    // [B·L, E] → [B·H, L, Dh]
    const h = tf.reshape(x, [batch, length, this.numHeads, this.headDim]);
    return tf.reshape(tf.transpose(h, [0, 2, 1, 3]), [batch * this.numHeads, length, this.headDim]);
  }

  /**
   * `query` `[B, L, E]`, `key`/`value` `[B, S, E]` (pass the same tensor for self-attention).
   * `additiveMask` broadcasts to `[B·H, L, S]` or `[L, S]` (−Infinity = masked).
   */
  apply(
    query: tf.Tensor3D,
    key: tf.Tensor3D,
    value: tf.Tensor3D,
    ctx: ForwardContext,
    opts: { additiveMask?: tf.Tensor; needWeights?: boolean } = {},
  ): AttentionResult {
    const [b, l, e] = query.shape;
    const s = key.shape[1];
    const w = this.inProjWeight as tf.Tensor2D;
    let q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D;
    const qFlat = tf.reshape(query, [b * l, e]) as tf.Tensor2D;
    if (query === key && key === value) {
      const qkv = tf.add(tf.matMul(qFlat, w), this.inProjBias) as tf.Tensor2D;
      [q, k, v] = tf.split(qkv, 3, 1) as tf.Tensor2D[];
    } else {
      const [wq, wk, wv] = tf.split(w, 3, 1) as tf.Tensor2D[];
      const [bq, bk, bv] = tf.split(this.inProjBias, 3, 0);
      q = tf.add(tf.matMul(qFlat, wq), bq);
      k = tf.add(tf.matMul(tf.reshape(key, [b * s, e]) as tf.Tensor2D, wk), bk);
      v = tf.add(tf.matMul(tf.reshape(value, [b * s, e]) as tf.Tensor2D, wv), bv);
    }
    q = tf.mul(q, 1 / Math.sqrt(this.headDim));
    const qh = this.#split(q, b, l), kh = this.#split(k, b, s), vh = this.#split(v, b, s);
    let scores: tf.Tensor3D = tf.matMul(qh, kh, false, true); // [B·H, L, S]
    if (opts.additiveMask) scores = tf.add(scores, opts.additiveMask);
    const probs = tf.softmax(scores, -1) as tf.Tensor3D;
    const attended = tf.matMul(dropout(probs, this.dropoutRate, ctx), vh); // [B·H, L, Dh]
    const merged = tf.reshape(
      tf.transpose(tf.reshape(attended, [b, this.numHeads, l, this.headDim]), [0, 2, 1, 3]),
      [b, l, e],
    ) as tf.Tensor3D;
    const output = this.outProj.apply(merged);
    return {
      output,
      weights: opts.needWeights ? tf.reshape(probs, [b, this.numHeads, l, s]) as tf.Tensor4D : undefined,
    };
  }
}
