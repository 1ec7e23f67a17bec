/**
 * PARSeq's decoder (strhub `modules.Decoder` / `DecoderLayer`): two-stream attention.
 *
 * Each layer runs the query stream
 * `q + self_attn(norm_q(q), norm_c(c), norm_c(c), query_mask, padding)`, then `+ cross_attn(norm1(·), memory)`
 * (no mask), then `+ linear2(gelu(linear1(norm2(·))))`; non-last layers also update the content stream the
 * same way with `norm_c(c)` as the query and the content mask. The output is `norm(q)`. Every LayerNorm here
 * has eps **1e-5**. Attention modules are `nn.MultiheadAttention` (`in_proj_weight` `[3E, E]`,
 * `in_proj_bias`, `out_proj`) with dropout on the weights; the residual branches have their own dropouts.
 *
 * Names: `decoder.layers.{i}.{self_attn,cross_attn}.{in_proj_weight,in_proj_bias,out_proj.*}`,
 * `decoder.layers.{i}.{linear1,linear2,norm1,norm2,norm_q,norm_c}.*`, `decoder.norm.*`.
 */
import * as tf from "@tensorflow/tfjs";
import { dropout, type ForwardContext, LayerNorm, Linear } from "../nn/layers.ts";
import { normal, type Scope, xavierUniform, zeros } from "../nn/params.ts";
import { attend, gelu } from "./attention.ts";

export const DECODER_LN_EPS = 1e-5;

const linearInit = { weightInit: normal(0.02), biasInit: zeros };

/** `nn.MultiheadAttention(batch_first=True)` with PyTorch's parameter names. */
export class TorchMultiheadAttention {
  readonly inProjWeight: tf.Variable;
  readonly inProjBias: tf.Variable;
  readonly outProj: Linear;

  constructor(scope: Scope, readonly dim: number, readonly heads: number, readonly dropoutRate: number) {
    this.inProjWeight = scope.weight("in_proj_weight", [3 * dim, dim], "linear", xavierUniform);
    this.inProjBias = scope.weight("in_proj_bias", [3 * dim], "plain", zeros);
    this.outProj = new Linear(scope.child("out_proj"), dim, dim, linearInit);
  }

  apply(query: tf.Tensor3D, kv: tf.Tensor3D, ctx: ForwardContext, mask?: tf.Tensor): tf.Tensor3D {
    const [wq, wkv] = tf.split(this.inProjWeight, [this.dim, 2 * this.dim], 1) as tf.Tensor2D[];
    const [bq, bkv] = tf.split(this.inProjBias, [this.dim, 2 * this.dim], 0);
    const proj = (x: tf.Tensor3D, w: tf.Tensor2D, b: tf.Tensor) => {
      const [n, l, e] = x.shape;
      return tf.reshape(tf.add(tf.matMul(tf.reshape(x, [n * l, e]) as tf.Tensor2D, w), b), [n, l, w.shape[1]]);
    };
    const q = proj(query, wq, bq) as tf.Tensor3D;
    const [k, v] = tf.split(proj(kv, wkv, bkv), 2, 2) as tf.Tensor3D[];
    return this.outProj.apply(attend(q, k, v, this.heads, ctx, mask, this.dropoutRate));
  }
}

/** Debug outputs of the first layer's query stream (the fixture's `query_self_attn_out` etc.). */
export type Trace = (name: string, t: tf.Tensor) => void;

export class DecoderLayer {
  readonly selfAttn: TorchMultiheadAttention;
  readonly crossAttn: TorchMultiheadAttention;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly normQ: LayerNorm;
  readonly normC: LayerNorm;

  constructor(scope: Scope, readonly dim: number, heads: number, mlpRatio: number, readonly dropoutRate: number) {
    this.selfAttn = new TorchMultiheadAttention(scope.child("self_attn"), dim, heads, dropoutRate);
    this.crossAttn = new TorchMultiheadAttention(scope.child("cross_attn"), dim, heads, dropoutRate);
    this.linear1 = new Linear(scope.child("linear1"), dim, dim * mlpRatio, linearInit);
    this.linear2 = new Linear(scope.child("linear2"), dim * mlpRatio, dim, linearInit);
    this.norm1 = new LayerNorm(scope.child("norm1"), dim, DECODER_LN_EPS);
    this.norm2 = new LayerNorm(scope.child("norm2"), dim, DECODER_LN_EPS);
    this.normQ = new LayerNorm(scope.child("norm_q"), dim, DECODER_LN_EPS);
    this.normC = new LayerNorm(scope.child("norm_c"), dim, DECODER_LN_EPS);
  }

  #stream(
    tgt: tf.Tensor3D,
    tgtNorm: tf.Tensor3D,
    kv: tf.Tensor3D,
    memory: tf.Tensor3D,
    mask: tf.Tensor | undefined,
    ctx: ForwardContext,
    trace?: Trace,
  ): tf.Tensor3D {
    const p = this.dropoutRate;
    const sa = this.selfAttn.apply(tgtNorm, kv, ctx, mask);
    trace?.("self_attn_out", sa);
    let x: tf.Tensor3D = tf.add(tgt, dropout(sa, p, ctx));
    const ca = this.crossAttn.apply(this.norm1.apply(x), memory, ctx);
    trace?.("cross_attn_out", ca);
    x = tf.add(x, dropout(ca, p, ctx));
    const ff = this.linear2.apply(dropout(gelu(this.linear1.apply(this.norm2.apply(x))), p, ctx));
    return tf.add(x, dropout(ff, p, ctx));
  }

  apply(
    query: tf.Tensor3D,
    content: tf.Tensor3D,
    memory: tf.Tensor3D,
    masks: { query?: tf.Tensor; content?: tf.Tensor },
    updateContent: boolean,
    ctx: ForwardContext,
    trace?: Trace,
  ): [tf.Tensor3D, tf.Tensor3D] {
    const contentNorm = this.normC.apply(content);
    const q = this.#stream(query, this.normQ.apply(query), contentNorm, memory, masks.query, ctx, trace);
    const c = updateContent ? this.#stream(content, contentNorm, contentNorm, memory, masks.content, ctx) : content;
    return [q, c];
  }
}

export interface DecoderOptions {
  embedDim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  dropout: number;
}

export class Decoder {
  readonly layers: DecoderLayer[];
  readonly norm: LayerNorm;

  constructor(scope: Scope, o: DecoderOptions) {
    this.layers = Array.from(
      { length: o.depth },
      (_, i) => new DecoderLayer(scope.child("layers").child(i), o.embedDim, o.heads, o.mlpRatio, o.dropout),
    );
    this.norm = new LayerNorm(scope.child("norm"), o.embedDim, DECODER_LN_EPS);
  }

  /**
   * `query` `[B, Lq, E]`, `content` `[B, L, E]`, `memory` `[B, S, E]`; masks additive (see attention.ts),
   * `query` broadcasting to `[B, H, Lq, L]` and `content` to `[B, H, L, L]`. Returns `norm(query)`.
   */
  apply(
    query: tf.Tensor3D,
    content: tf.Tensor3D,
    memory: tf.Tensor3D,
    masks: { query?: tf.Tensor; content?: tf.Tensor },
    ctx: ForwardContext,
    trace?: Trace,
  ): tf.Tensor3D {
    this.layers.forEach((layer, i) => {
      const last = i === this.layers.length - 1;
      [query, content] = layer.apply(query, content, memory, masks, !last, ctx, i === 0 ? trace : undefined);
    });
    return this.norm.apply(query);
  }
}
