/**
 * Post-LN transformer encoder layer as in ABINet's `transformer.py` (torch 1.x form):
 *
 *     x = norm1(x + dropout1(self_attn(x, x, x)))
 *     x = norm2(x + dropout2(linear2(dropout(relu(linear1(x))))))
 *
 * with `self_attn` a MultiheadAttention (dropout on its attention weights). Names: `self_attn.*`,
 * `linear1`, `linear2`, `norm1`, `norm2`. Batch-first `[B, L, E]` here.
 */
import * as tf from "@tensorflow/tfjs";
import { MultiheadAttention } from "../nn/attention.ts";
import { dropout, type ForwardContext, LayerNorm, Linear } from "../nn/layers.ts";
import type { Scope } from "../nn/params.ts";

export interface EncoderLayerConfig {
  dModel: number;
  nhead: number;
  ffn: number;
  dropout: number;
}

export class TransformerEncoderLayer {
  readonly selfAttn: MultiheadAttention;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;

  constructor(scope: Scope, readonly config: EncoderLayerConfig) {
    const { dModel, nhead, ffn } = config;
    this.selfAttn = new MultiheadAttention(scope.child("self_attn"), dModel, nhead, config.dropout);
    this.linear1 = new Linear(scope.child("linear1"), dModel, ffn);
    this.linear2 = new Linear(scope.child("linear2"), ffn, dModel);
    this.norm1 = new LayerNorm(scope.child("norm1"), dModel);
    this.norm2 = new LayerNorm(scope.child("norm2"), dModel);
  }

  /** `[B, L, E]` → `[B, L, E]`; `weightsOut` receives the head-averaged attention `[B, L, L]` (debug). */
  apply(x: tf.Tensor3D, ctx: ForwardContext, weightsOut?: tf.Tensor3D[]): tf.Tensor3D {
    const p = this.config.dropout;
    const attn = this.selfAttn.apply(x, x, x, ctx, { needWeights: weightsOut !== undefined });
    if (weightsOut && attn.weights) weightsOut.push(tf.mean(attn.weights, 1) as tf.Tensor3D);
    let y = this.norm1.apply(tf.add(x, dropout(attn.output, p, ctx)) as tf.Tensor3D);
    const hidden = dropout(tf.relu(this.linear1.apply(y)), p, ctx);
    y = this.norm2.apply(tf.add(y, dropout(this.linear2.apply(hidden), p, ctx)) as tf.Tensor3D);
    return y;
  }
}
