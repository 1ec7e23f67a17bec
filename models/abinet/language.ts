/**
 * ABINet's bidirectional cloze network (BCN), the language model, written from the paper and the fixture
 * description (`abinet_language/bcn.json`):
 *
 *     tokens [B, T, C] (probabilities) ── stopGradient (detach) ── proj (Linear C→d, no bias)
 *       + token_encoder.pe ── dropout                                  = key / value  [B, T, d]
 *     query = pos_encoder.pe (positions only, no token content)        [T, d] per sample
 *     N × decoder layer without self-attention:
 *         x = norm2(x + dropout(mha(x, kv, kv, location mask + padding mask)))
 *         x = norm3(x + dropout(linear2(dropout(relu(linear1(x))))))
 *     logits = cls(x)
 *
 * - location mask: query t never sees key t (−∞ on the diagonal), so each position is predicted from the
 *   others only (the "cloze" of BCN);
 * - padding (length) mask: keys `s ≥ length[b]` are ignored; lengths are the predicted ones
 *   (`languageLengths`), clamped to [2, T] as ABINet does (length 1 would mask every key of query 0).
 *
 * State-dict names are the official `BCNLanguage` ones: `proj.weight`, `token_encoder.pe`,
 * `pos_encoder.pe`, `model.layers.i.{multihead_attn.*, linear1, linear2, norm2, norm3}`, `cls.*`.
 */
import * as tf from "@tensorflow/tfjs";
import { MultiheadAttention } from "../nn/attention.ts";
import { dropout, type ForwardContext, LayerNorm, Linear } from "../nn/layers.ts";
import type { Scope } from "../nn/params.ts";
import { sinusoidalTable } from "../nn/positional.ts";
import { ptLengths } from "../decode.ts";

export interface BcnConfig {
  dModel: number;
  nhead: number;
  ffn: number;
  numLayers: number;
  dropout: number;
  /** T = max_length + 1. */
  positions: number;
  numClasses: number;
  /** Block gradients from the language model's input (ABINet's "autonomous" BCN). */
  detach: boolean;
}

export interface LanguageOutput {
  /** `[B, T, d]` decoder output (the alignment's `l_feature`). */
  feature: tf.Tensor3D;
  /** `[B, T, numClasses]`. */
  logits: tf.Tensor3D;
}

/** A large finite negative instead of −∞: same softmax, no `0·∞` in gradients. */
export const MASKED = -1e9;

/** Location mask `[T, T]` (row = query, column = key): `MASKED` on the diagonal, 0 elsewhere. */
export function locationMask(positions: number): Float32Array {
  const m = new Float32Array(positions * positions);
  for (let t = 0; t < positions; t++) m[t * positions + t] = MASKED;
  return m;
}

/** Padding mask `[B, T]` as plain data: `MASKED` where key `s ≥ lengths[b]`. */
export function paddingMask(lengths: ArrayLike<number>, positions: number): Float32Array {
  const m = new Float32Array(lengths.length * positions);
  for (let b = 0; b < lengths.length; b++) {
    for (let s = Math.max(0, lengths[b]); s < positions; s++) m[b * positions + s] = MASKED;
  }
  return m;
}

/**
 * The additive attention mask `[B·H, T, T]` (sample-major, then head, query, key): the location mask plus the
 * padding mask of each sample's length, the same for every head.
 */
export function attentionMask(lengths: ArrayLike<number>, positions: number, heads: number): Float32Array {
  const t = positions, block = t * t;
  const out = new Float32Array(lengths.length * heads * block);
  const location = locationMask(t);
  for (let b = 0; b < lengths.length; b++) {
    const one = Float32Array.from(location);
    for (let q = 0; q < t; q++) for (let k = Math.max(0, lengths[b]); k < t; k++) one[q * t + k] = MASKED;
    for (let h = 0; h < heads; h++) out.set(one, (b * heads + h) * block);
  }
  return out;
}

/**
 * Predicted lengths for the language model: ABINet's `_get_length` (first position whose argmax is the null
 * class, plus 1; 0 when none is) clamped to [2, T]. Read back from the logits, so no gradient path runs
 * through the (non-differentiable) argmax into the masks.
 */
export function languageLengths(logits: tf.Tensor3D): Int32Array {
  const [b, t] = logits.shape;
  const argmax = tf.tidy(() => tf.argMax(logits, -1).dataSync());
  const out = ptLengths(argmax, b, t);
  for (let i = 0; i < b; i++) out[i] = Math.min(Math.max(out[i], 2), t);
  return out;
}

/** Identity forward, zero gradient: PyTorch's `.detach()` inside a differentiated function. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    return { value: tf.clone(input), gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [tf.zerosLike(dy as tf.Tensor)] };
  });
  return op(x) as T;
}

/** A TransformerDecoderLayer whose self-attention is off: cross-attention + feed-forward, post-LN. */
export class BcnDecoderLayer {
  readonly multiheadAttn: MultiheadAttention;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm2: LayerNorm;
  readonly norm3: LayerNorm;

  constructor(scope: Scope, readonly config: BcnConfig) {
    const { dModel, nhead, ffn } = config;
    this.multiheadAttn = new MultiheadAttention(scope.child("multihead_attn"), dModel, nhead, config.dropout);
    this.linear1 = new Linear(scope.child("linear1"), dModel, ffn);
    this.linear2 = new Linear(scope.child("linear2"), ffn, dModel);
    this.norm2 = new LayerNorm(scope.child("norm2"), dModel);
    this.norm3 = new LayerNorm(scope.child("norm3"), dModel);
  }

  apply(x: tf.Tensor3D, memory: tf.Tensor3D, mask: tf.Tensor, ctx: ForwardContext): tf.Tensor3D {
    const p = this.config.dropout;
    const attn = this.multiheadAttn.apply(x, memory, memory, ctx, { additiveMask: mask }).output;
    let y = this.norm2.apply(tf.add(x, dropout(attn, p, ctx)) as tf.Tensor3D);
    const hidden = dropout(tf.relu(this.linear1.apply(y)), p, ctx);
    y = this.norm3.apply(tf.add(y, dropout(this.linear2.apply(hidden), p, ctx)) as tf.Tensor3D);
    return y;
  }
}

export class BCNLanguage {
  readonly proj: Linear;
  readonly tokenPe: tf.Variable;
  readonly queryPe: tf.Variable;
  readonly layers: BcnDecoderLayer[];
  readonly cls: Linear;

  constructor(scope: Scope, readonly config: BcnConfig) {
    const { dModel: d, positions: t, numClasses } = config;
    this.proj = new Linear(scope.child("proj"), numClasses, d, { bias: false });
    const table = () => sinusoidalTable(t, d);
    this.tokenPe = scope.child("token_encoder").buffer("pe", [t, 1, d], table);
    this.queryPe = scope.child("pos_encoder").buffer("pe", [t, 1, d], table);
    const layers = scope.child("model").child("layers");
    this.layers = Array.from({ length: config.numLayers }, (_, i) => new BcnDecoderLayer(layers.child(i), config));
    this.cls = new Linear(scope.child("cls"), d, numClasses);
  }

  /**
   * `tokens` `[B, T, C]` probabilities, `lengths` `[B]` (clamped to [2, T], see `languageLengths`) → feature,
   * logits. Call inside a tidy.
   */
  apply(tokens: tf.Tensor3D, lengths: ArrayLike<number>, ctx: ForwardContext): LanguageOutput {
    const { dModel: d, positions: t, nhead } = this.config;
    const [b, tt, c] = tokens.shape;
    if (tt !== t || c !== this.config.numClasses) {
      throw new Error(
        `models/abinet/language.ts: tokens [${tokens.shape}], the model expects [B, ${t}, ${this.config.numClasses}]`,
      );
    }
    if (lengths.length !== b) throw new Error(`models/abinet/language.ts: ${lengths.length} lengths for ${b} samples`);
    const input = this.config.detach ? stopGradient(tokens) : tokens;
    const pe = tf.reshape(this.tokenPe, [1, t, d]);
    const memory = dropout(tf.add(this.proj.apply(input), pe) as tf.Tensor3D, this.config.dropout, ctx);
    // The query stream is the positional table alone (pos_encoder has no dropout in ABINet), the same for every
    // sample: broadcast by a multiply (wasm's Tile kernel is slow).
    const query = tf.mul(tf.ones([b, 1, 1]), tf.reshape(this.queryPe, [1, t, d])) as tf.Tensor3D;
    // Location + padding mask per (sample, head), built as plain data from the known lengths.
    const mask = tf.tensor3d(attentionMask(lengths, t, nhead), [b * nhead, t, t]);
    let x = query;
    for (const layer of this.layers) x = layer.apply(x, memory, mask, ctx);
    return { feature: x, logits: this.cls.apply(x) };
  }

  dispose(): void {
    // Nothing beyond the variables, which the ParamStore owns.
  }
}
