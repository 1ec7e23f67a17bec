/**
 * ABINet's `PositionAttention` (independent implementation from the architecture description):
 *
 * - key mini-UNet on the `[B, h, w, C]` features: `k_encoder.i` = conv 3×3 (bias, pad 1, stride s_i)
 *   `.0` + BN `.1` + ReLU, widths C → c → c → c → c, strides (1,2), (2,2), (2,2), (2,2) by default;
 *   `k_decoder.i` = nearest upsample + conv 3×3 (bias) `.1` + BN `.2` + ReLU: ×2 with the skip add of
 *   the matching encoder output for all but the last, which resizes to (h, w) and maps c → C;
 * - queries: `project(pe[:T])` (`pos_encoder.pe` `[T, 1, C]`, `project` Linear(C, C));
 * - `attn_scores = softmax(q · k / √C)` over the `h·w` positions (row-major), `attn_vecs` = scores ·
 *   the raw input features.
 */
import * as tf from "@tensorflow/tfjs";
import { BatchNorm2d, Conv2d, type ForwardContext, Linear } from "../nn/layers.ts";
import type { Scope } from "../nn/params.ts";
import { sinusoidalTable } from "../nn/positional.ts";
import { resizeNearest } from "../nn/resize.ts";

export interface PositionAttentionConfig {
  /** T = max_length + 1 query positions. */
  maxLength: number;
  inChannels: number;
  numChannels: number;
  /** Feature-map size. */
  height: number;
  width: number;
  /** k_encoder strides [sh, sw]; default (1,2), (2,2), (2,2), (2,2). */
  strides?: [number, number][];
}

export const DEFAULT_ATTENTION_STRIDES: [number, number][] = [[1, 2], [2, 2], [2, 2], [2, 2]];

interface ConvBn {
  conv: Conv2d;
  bn: BatchNorm2d;
}

export interface AttentionOutput {
  /** `[B, T, C]` ("feature" in ABINet). */
  attnVecs: tf.Tensor3D;
  /** `[B, T, h, w]`. */
  attnScores: tf.Tensor4D;
  /** `[B, h, w, C]` output of the last k_decoder (debug). */
  keyMap: tf.Tensor4D;
}

export class PositionAttention {
  readonly encoder: ConvBn[];
  readonly decoder: ConvBn[];
  readonly pe: tf.Variable;
  readonly project: Linear;
  /** Encoder output sizes, [h, w] per level. */
  readonly sizes: [number, number][];

  constructor(scope: Scope, readonly config: PositionAttentionConfig) {
    const strides = config.strides ?? DEFAULT_ATTENTION_STRIDES;
    if (strides.length < 1) throw new Error("models/abinet/position_attention.ts: need at least one encoder level");
    const { inChannels: C, numChannels: c } = config;
    const convBn = (s: Scope, convIndex: number, inC: number, outC: number, stride: [number, number]): ConvBn => ({
      conv: new Conv2d(s.child(convIndex), { inChannels: inC, outChannels: outC, kernel: 3, stride, padding: 1 }),
      bn: new BatchNorm2d(s.child(convIndex + 1), outC),
    });
    const enc = scope.child("k_encoder");
    this.encoder = strides.map((st, i) => convBn(enc.child(i), 0, i === 0 ? C : c, c, st));
    const dec = scope.child("k_decoder");
    const n = strides.length;
    this.decoder = strides.map((_, i) => convBn(dec.child(i), 1, c, i === n - 1 ? C : c, [1, 1]));
    // Sizes: conv 3×3 pad 1 stride s maps n → floor((n − 1) / s) + 1; the ×2 decoders must meet the skips.
    this.sizes = [];
    let [h, w] = [config.height, config.width];
    for (const [sh, sw] of strides) {
      [h, w] = [Math.floor((h - 1) / sh) + 1, Math.floor((w - 1) / sw) + 1];
      this.sizes.push([h, w]);
    }
    for (let i = 0; i < n - 1; i++) {
      const [fh, fw] = this.sizes[n - 1 - i];
      const [sh, sw] = this.sizes[n - 2 - i];
      if (fh * 2 !== sh || fw * 2 !== sw) {
        throw new Error(
          `models/abinet/position_attention.ts: a ${config.height}×${config.width} map does not fit the key UNet (level sizes ${
            JSON.stringify(this.sizes)
          }: ×2 upsampling must meet each skip)`,
        );
      }
    }
    this.pe = scope.child("pos_encoder").buffer(
      "pe",
      [config.maxLength, 1, C],
      () => sinusoidalTable(config.maxLength, C),
    );
    this.project = new Linear(scope.child("project"), C, C);
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): AttentionOutput {
    const [b, h, w, C] = x.shape;
    const T = this.config.maxLength;
    const features: tf.Tensor4D[] = [];
    let k = x;
    for (const { conv, bn } of this.encoder) {
      k = tf.relu(bn.apply(conv.apply(k), ctx));
      features.push(k);
    }
    const n = this.decoder.length;
    for (let i = 0; i < n - 1; i++) {
      const { conv, bn } = this.decoder[i];
      const up = resizeNearest(k, k.shape[1] * 2, k.shape[2] * 2);
      k = tf.add(tf.relu(bn.apply(conv.apply(up), ctx)), features[n - 2 - i]);
    }
    const last = this.decoder[n - 1];
    k = tf.relu(last.bn.apply(last.conv.apply(resizeNearest(k, h, w)), ctx));

    const q = this.project.apply(tf.reshape(this.pe, [T, C]) as tf.Tensor2D); // [T, C]
    const keys = tf.reshape(k, [b * h * w, C]) as tf.Tensor2D;
    const logits = tf.mul(tf.matMul(q, keys, false, true), 1 / Math.sqrt(C)); // [T, B·h·w]
    const scores = tf.softmax(tf.transpose(tf.reshape(logits, [T, b, h * w]), [1, 0, 2]), -1) as tf.Tensor3D;
    const values = tf.reshape(x, [b, h * w, C]) as tf.Tensor3D;
    const attnVecs = tf.matMul(scores, values) as tf.Tensor3D; // [B, T, C], equal batch dims
    return { attnVecs, attnScores: tf.reshape(scores, [b, T, h, w]) as tf.Tensor4D, keyMap: k };
  }
}
