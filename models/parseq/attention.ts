/**
 * Scaled dot-product multi-head attention shared by PARSeq's encoder (timm `Attention`: packed `qkv`) and
 * decoder (`nn.MultiheadAttention`: packed `in_proj_weight`). Both pack rows `[q; k; v]`, split heads as
 * `h·Dh … (h+1)·Dh` and scale q by `Dh^-0.5` after its bias. Batch-first `[B, L, E]`.
 *
 * Masks are additive and broadcast to `[B, H, L, S]` (−Infinity = may not attend); `maskTensor` builds one
 * from PyTorch-style bool masks, the `attn_mask` `[L, S]` OR-ed with the `key_padding_mask` `[B, S]`.
 */
import * as tf from "@tensorflow/tfjs";
import { dropout, type ForwardContext } from "../nn/layers.ts";

/** `[B, L, E]` → `[B, H, L, Dh]`. */
export function splitHeads(x: tf.Tensor3D, heads: number): tf.Tensor4D {
  const [b, l, e] = x.shape;
  return tf.transpose(tf.reshape(x, [b, l, heads, e / heads]), [0, 2, 1, 3]);
}

/** `[B, H, L, Dh]` → `[B, L, E]`. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [b, h, l, d] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, l, h * d]);
}

/**
 * softmax(q·kᵀ·Dh^-0.5 + mask)·v over heads; `q` `[B, L, E]` (bias added, not yet scaled), `k`, `v` `[B, S, E]`.
 * `dropoutRate` applies to the attention weights in train mode (as `nn.MultiheadAttention`'s `dropout`).
 */
export function attend(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  heads: number,
  ctx: ForwardContext,
  mask?: tf.Tensor,
  dropoutRate = 0,
): tf.Tensor3D {
  const dh = q.shape[2] / heads;
  const qh = splitHeads(tf.mul(q, 1 / Math.sqrt(dh)), heads);
  let scores: tf.Tensor4D = tf.matMul(qh, splitHeads(k, heads), false, true);
  if (mask) scores = tf.add(scores, mask);
  const probs = dropout(tf.softmax(scores, -1), dropoutRate, ctx);
  return mergeHeads(tf.matMul(probs, splitHeads(v, heads)));
}

/**
 * Additive mask tensor from bool masks (1 = may not attend): `attn` `[L, S]` and/or `keyPadding` `[B, S]`.
 * Returns `[L, S]`, `[B, 1, 1, S]` or `[B, 1, L, S]`, or undefined when neither is given.
 */
export function maskTensor(
  attn: { data: Uint8Array; rows: number; cols: number } | undefined,
  keyPadding: { data: Uint8Array; batch: number; cols: number } | undefined,
): tf.Tensor | undefined {
  if (attn && keyPadding && attn.cols !== keyPadding.cols) {
    throw new Error(`models/parseq/attention.ts: attn mask has ${attn.cols} keys, the padding mask ${keyPadding.cols}`);
  }
  const add = (m: number) => (m ? -Infinity : 0);
  if (attn && !keyPadding) return tf.tensor2d(Float32Array.from(attn.data, add), [attn.rows, attn.cols]);
  if (!attn && keyPadding) {
    return tf.tensor4d(Float32Array.from(keyPadding.data, add), [keyPadding.batch, 1, 1, keyPadding.cols]);
  }
  if (!attn || !keyPadding) return undefined;
  const { rows, cols } = attn;
  const out = new Float32Array(keyPadding.batch * rows * cols);
  for (let b = 0; b < keyPadding.batch; b++) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        out[(b * rows + r) * cols + c] = attn.data[r * cols + c] || keyPadding.data[b * cols + c] ? -Infinity : 0;
      }
    }
  }
  return tf.tensor4d(out, [keyPadding.batch, 1, rows, cols]);
}

/** Exact (erf) GELU, as `nn.GELU()` / timm's default. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T;
}
