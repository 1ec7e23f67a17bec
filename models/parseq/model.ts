/**
 * The PARSeq network (strhub `model.PARSeq`) and its training objective (strhub `system.PARSeq.training_step`).
 *
 * - `encode`: the ViT (encoder.ts) → memory `[B, patches, E]`.
 * - `decode(tgt, memory, …)`: content = `√E · embedding(tgt)` plus, for j ≥ 1, `pos_queries[j − 1]` (the BOS
 *   at j = 0 carries **no** position); query = `pos_queries[:L]` unless given; then the two-stream decoder.
 * - `head`: Linear(E, numClasses), EOS + characters.
 * - `infer`: AR decoding (causal masks, one query per step, early stop once every row holds an EOS) or one
 *   NAR pass, then `refineIters` cloze refinements (query i sees every content position but i + 1; padding =
 *   the first EOS and everything after it). Refinement always outputs `max_length + 1` positions.
 * - `plmLoss`: permutation language modelling: for each permutation its content / query masks, padding keys
 *   `PAD | EOS`, cross-entropy ignoring PAD, weighted by the number of targets n; after the second permutation
 *   EOS targets become PAD. All permutations run as one batch (memory tiled K times), so each has its own
 *   dropout masks as in strhub's per-permutation `decode` calls.
 *
 * Names (no `model.` prefix, as the released checkpoints' `system.model`): `pos_queries`, `encoder.*`,
 * `decoder.*`, `head.*`, `text_embed.embedding.weight`.
 */
import * as tf from "@tensorflow/tfjs";
import { dropout, EVAL, type ForwardContext, Linear } from "../nn/layers.ts";
import { normal, type Scope, zeros } from "../nn/params.ts";
import { maskTensor } from "./attention.ts";
import { Decoder, type Trace } from "./decoder.ts";
import { VitEncoder } from "./encoder.ts";
import { attentionMasks, causalMask, clozeMask, sliceColumns } from "./permutations.ts";
import { type SpecialIds, specialIds, type Targets } from "./tokenizer.ts";

export interface NetOptions {
  imageHeight: number;
  imageWidth: number;
  channels: number;
  patchHeight: number;
  patchWidth: number;
  embedDim: number;
  encDepth: number;
  encHeads: number;
  encMlpRatio: number;
  decDepth: number;
  decHeads: number;
  decMlpRatio: number;
  dropout: number;
  maxLength: number;
  /** Head outputs: EOS + characters. */
  numClasses: number;
}

export interface DecodeOptions {
  /** Content (self-attention of non-last layers) mask `[L, L]`, 1 = may not attend. */
  contentMask?: Uint8Array;
  /** Query mask `[Lq, L]`. */
  queryMask?: Uint8Array;
  /** Key padding `[B, L]`. */
  paddingMask?: Uint8Array;
  /** Query stream input `[B, Lq, E]`; default `pos_queries[:L]`. */
  query?: tf.Tensor3D;
  trace?: Trace;
}

export interface InferOptions {
  decodeAr: boolean;
  refineIters: number;
  /** strhub's `max_length` argument: given, the AR loop does not stop early. */
  maxLength?: number;
}

export interface PlmResult {
  loss: tf.Scalar;
  /** Per permutation: the mean cross-entropy over its non-PAD targets, and n. */
  perPermutation: { ce: tf.Scalar; n: number }[];
  /** `[K, B, L, C]` logits, when asked for. */
  logits?: tf.Tensor4D;
}

/** Row-major argmax over the last axis, read back (the tensor is freed). */
function argmaxData(t: tf.Tensor): Int32Array {
  const arg = tf.argMax(t, -1);
  const data = arg.dataSync() as Int32Array;
  arg.dispose();
  return data;
}

export class ParseqNet {
  readonly posQueries: tf.Variable;
  readonly encoder: VitEncoder;
  readonly decoder: Decoder;
  readonly head: Linear;
  readonly textEmbed: tf.Variable;
  readonly ids: SpecialIds;
  readonly steps: number;

  constructor(scope: Scope, readonly o: NetOptions) {
    this.steps = o.maxLength + 1;
    this.ids = specialIds(o.numClasses);
    // state_dict order of model.PARSeq: pos_queries, encoder, decoder, head, text_embed.
    this.posQueries = scope.weight("pos_queries", [1, this.steps, o.embedDim], "plain", normal(0.02));
    this.encoder = new VitEncoder(scope.child("encoder"), {
      imageHeight: o.imageHeight,
      imageWidth: o.imageWidth,
      channels: o.channels,
      patchHeight: o.patchHeight,
      patchWidth: o.patchWidth,
      embedDim: o.embedDim,
      depth: o.encDepth,
      heads: o.encHeads,
      mlpRatio: o.encMlpRatio,
    });
    this.decoder = new Decoder(scope.child("decoder"), {
      embedDim: o.embedDim,
      depth: o.decDepth,
      heads: o.decHeads,
      mlpRatio: o.decMlpRatio,
      dropout: o.dropout,
    });
    this.head = new Linear(scope.child("head"), o.embedDim, o.numClasses, {
      weightInit: normal(0.02),
      biasInit: zeros,
    });
    this.textEmbed = scope.child("text_embed").child("embedding").weight(
      "weight",
      [o.numClasses + 2, o.embedDim],
      "plain",
      normal(0.02),
    );
  }

  encode(images: tf.Tensor4D, ctx: ForwardContext = EVAL, trace?: Trace): tf.Tensor3D {
    const [, h, w, c] = images.shape;
    if (h !== this.o.imageHeight || w !== this.o.imageWidth || c !== this.o.channels) {
      throw new Error(
        `parseq: images are ${h}×${w}×${c} (NHWC), the model expects ${this.o.imageHeight}×${this.o.imageWidth}×${this.o.channels}`,
      );
    }
    return this.encoder.apply(images, ctx, trace);
  }

  /** Content stream input `[B, L, E]` for ids `[B, L]` (before dropout). */
  content(ids: Int32Array, batch: number, length: number): tf.Tensor3D {
    if (length > this.steps + 1) {
      throw new Error(`parseq: ${length - 1} target tokens exceed the ${this.steps} position queries`);
    }
    const e = this.o.embedDim;
    const emb = tf.mul(tf.gather(this.textEmbed, tf.tensor2d(ids, [batch, length], "int32")), Math.sqrt(e));
    if (length === 1) return emb as tf.Tensor3D;
    const pos = tf.concat([tf.zeros([1, 1, e]), tf.slice(this.posQueries, [0, 0, 0], [1, length - 1, e])], 1);
    return tf.add(emb, pos) as tf.Tensor3D;
  }

  /** Position queries `[batch, count, E]` from `start`. */
  queries(batch: number, start: number, count: number): tf.Tensor3D {
    return tf.tile(tf.slice(this.posQueries as tf.Tensor3D, [0, start, 0], [1, count, this.o.embedDim]), [batch, 1, 1]);
  }

  /** strhub `PARSeq.decode`: `tgt` `[B, L]` ids → `[B, Lq, E]`. */
  decode(tgt: Targets, memory: tf.Tensor3D, opts: DecodeOptions = {}, ctx: ForwardContext = EVAL): tf.Tensor3D {
    const { batch, length } = tgt;
    const content = dropout(this.content(tgt.ids, batch, length), this.o.dropout, ctx);
    const query = dropout(opts.query ?? this.queries(batch, 0, length), this.o.dropout, ctx);
    const lq = query.shape[1];
    const pad = opts.paddingMask ? { data: opts.paddingMask, batch, cols: length } : undefined;
    const masks = {
      query: maskTensor(opts.queryMask && { data: opts.queryMask, rows: lq, cols: length }, pad),
      content: this.decoder.layers.length > 1
        ? maskTensor(opts.contentMask && { data: opts.contentMask, rows: length, cols: length }, pad)
        : undefined, // with one layer the content stream is never updated, so its mask has no effect
    };
    return this.decoder.apply(query, content, memory, masks, ctx, opts.trace);
  }

  logits(decoded: tf.Tensor3D): tf.Tensor3D {
    return this.head.apply(decoded);
  }

  /** strhub `PARSeq.forward` on NHWC images: `[B, positions, numClasses]` logits (eval mode). */
  infer(images: tf.Tensor4D, o: InferOptions): tf.Tensor3D {
    const testing = o.maxLength === undefined;
    const steps = Math.min(o.maxLength ?? this.o.maxLength, this.o.maxLength) + 1;
    const b = images.shape[0];
    const memory = tf.tidy(() => this.encode(images));
    const causal = causalMask(steps);
    let logits: tf.Tensor3D;
    if (o.decodeAr) {
      const tgtIn = new Int32Array(b * steps).fill(this.ids.pad);
      for (let r = 0; r < b; r++) tgtIn[r * steps] = this.ids.bos;
      const hasEos = new Uint8Array(b);
      const parts: tf.Tensor3D[] = [];
      for (let i = 0; i < steps; i++) {
        const j = i + 1;
        const ids = new Int32Array(b * j);
        for (let r = 0; r < b; r++) ids.set(tgtIn.subarray(r * steps, r * steps + j), r * j);
        const pI = tf.tidy(() =>
          this.logits(this.decode({ ids, batch: b, length: j }, memory, {
            contentMask: sliceColumns(causal, steps, [0, j], j),
            query: this.queries(b, i, 1),
            queryMask: sliceColumns(causal, steps, [i, j], j),
          }))
        );
        parts.push(pI);
        if (j < steps) {
          const next = argmaxData(pI); // [B, 1]
          for (let r = 0; r < b; r++) {
            tgtIn[r * steps + j] = next[r];
            if (next[r] === this.ids.eos) hasEos[r] = 1;
          }
          if (testing && hasEos.every((v) => v === 1)) break;
        }
      }
      logits = tf.concat(parts, 1);
      tf.dispose(parts);
    } else {
      logits = tf.tidy(() =>
        this.logits(this.decode({ ids: new Int32Array(b).fill(this.ids.bos), batch: b, length: 1 }, memory, {
          query: this.queries(b, 0, steps),
        }))
      );
    }
    if (o.refineIters > 0) {
      const cloze = clozeMask(steps);
      for (let it = 0; it < o.refineIters; it++) {
        const len = logits.shape[1]; // tokens fed back: BOS + argmax of all but the last position
        const arg = argmaxData(logits);
        const ids = new Int32Array(b * len);
        const padding = new Uint8Array(b * len);
        for (let r = 0; r < b; r++) {
          ids[r * len] = this.ids.bos;
          for (let t = 1; t < len; t++) ids[r * len + t] = arg[r * len + t - 1];
          let seen = false;
          for (let t = 0; t < len; t++) {
            seen ||= ids[r * len + t] === this.ids.eos;
            padding[r * len + t] = seen ? 1 : 0;
          }
        }
        const refined = tf.tidy(() =>
          this.logits(this.decode({ ids, batch: b, length: len }, memory, {
            // strhub passes the full [steps, steps] causal mask; its first len × len block is what applies.
            contentMask: sliceColumns(causal, steps, [0, len], len),
            paddingMask: padding,
            query: this.queries(b, 0, steps),
            queryMask: sliceColumns(cloze, steps, [0, steps], len),
          }))
        );
        logits.dispose();
        logits = refined;
      }
    }
    memory.dispose();
    return logits;
  }

  /**
   * The PLM loss for targets `tgt` (`[B, n + 2]`) under `perms` (rows of n + 2). With `keepLogits` the
   * per-permutation logits are returned too (the caller disposes them).
   */
  plmLoss(images: tf.Tensor4D, tgt: Targets, perms: number[][], ctx: ForwardContext, keepLogits = false): PlmResult {
    const { batch: b, length } = tgt;
    const l = length - 1; // n + 1 input and output positions
    const k = perms.length;
    for (const p of perms) {
      if (p.length !== length) throw new Error(`parseq: permutation of ${p.length} for targets of ${length}`);
    }
    const tgtIn = new Int32Array(b * l);
    const padding = new Uint8Array(b * l);
    // Weights of the targets, [K, B, L]: 1 where the target is not PAD (EOS → PAD from the third permutation).
    const weights = new Float32Array(k * b * l);
    const targets = new Int32Array(k * b * l);
    const counts = new Array<number>(k).fill(0);
    for (let r = 0; r < b; r++) {
      for (let t = 0; t < l; t++) {
        const inId = tgt.ids[r * length + t];
        const outId = tgt.ids[r * length + t + 1];
        tgtIn[r * l + t] = inId;
        padding[r * l + t] = inId === this.ids.pad || inId === this.ids.eos ? 1 : 0;
        for (let p = 0; p < k; p++) {
          const ignored = outId === this.ids.pad || (p >= 2 && outId === this.ids.eos);
          const at = (p * b + r) * l + t;
          targets[at] = ignored ? 0 : outId;
          weights[at] = ignored ? 0 : 1;
          counts[p] += ignored ? 0 : 1;
        }
      }
    }
    // Additive query / content masks [K·B, 1, L, L]: the permutation's mask OR the padding keys.
    const queryMask = new Float32Array(k * b * l * l);
    const contentMask = new Float32Array(k * b * l * l);
    perms.forEach((perm, p) => {
      const m = attentionMasks(perm);
      for (let r = 0; r < b; r++) {
        for (let i = 0; i < l; i++) {
          for (let j = 0; j < l; j++) {
            const at = ((p * b + r) * l + i) * l + j;
            const pad = padding[r * l + j];
            queryMask[at] = m.query[i * l + j] || pad ? -Infinity : 0;
            contentMask[at] = m.content[i * l + j] || pad ? -Infinity : 0;
          }
        }
      }
    });
    const memory = this.encode(images, ctx);
    const content = dropout(tf.tile(this.content(tgtIn, b, l), [k, 1, 1]), this.o.dropout, ctx);
    const query = dropout(this.queries(k * b, 0, l), this.o.dropout, ctx);
    const masks = {
      query: tf.tensor4d(queryMask, [k * b, 1, l, l]),
      content: this.decoder.layers.length > 1 ? tf.tensor4d(contentMask, [k * b, 1, l, l]) : undefined,
    };
    const out = this.decoder.apply(query, content, tf.tile(memory, [k, 1, 1]), masks, ctx);
    const logits = this.logits(out); // [K·B, L, C]
    const c = this.o.numClasses;
    const logp = tf.logSoftmax(tf.reshape(logits, [k * b * l, c]));
    // oneHot in int32 then cast: wasm's float32 oneHot is broken in tfjs 4.22.
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(targets, "int32"), c), "float32");
    const nll = tf.reshape(tf.mul(tf.neg(tf.sum(tf.mul(onehot, logp), 1)), tf.tensor1d(weights)), [k, b * l]);
    const perPermSum = tf.sum(nll, 1); // [K]
    const total = counts.reduce((a, v) => a + v, 0);
    const loss = tf.div(tf.sum(perPermSum), Math.max(total, 1)) as tf.Scalar;
    const perPermutation = counts.map((n, p) => ({
      ce: tf.div(tf.slice(perPermSum, [p], [1]).reshape([]), Math.max(n, 1)) as tf.Scalar,
      n,
    }));
    return { loss, perPermutation, logits: keepLogits ? tf.reshape(logits, [k, b, l, c]) as tf.Tensor4D : undefined };
  }
}
