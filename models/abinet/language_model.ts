/**
 * The BCN language model on its own, as the `pretrain_lm` stage trains it (ABINet's
 * `pretrain_language_model`): input = one-hot of a noisy (spelling-mutated) word, target = the clean word,
 * cross-entropy over the clean word's positions (plus EOS). Checkpoints carry the family name
 * `abinet_language` and the BCN's own names (`proj.weight`, `model.layers.0.…`), which
 * `AbinetModel.initFrom("language", …)` maps to `language.…`.
 *
 * It reads text, not images: `predict` refuses, `correct` runs the eval forward on encoded words. It is not a
 * registered model family (a `train` or `evaluate` stage could not feed it), only a `Recognizer` so that the
 * shared training loop (Adam, schedule, clipping, resumable checkpoints, curve) can train it.
 */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../../data/batch.ts";
import { EVAL, trainContext } from "../nn/layers.ts";
import { ParamStore } from "../nn/params.ts";
import { deriveSeed } from "../nn/rng.ts";
import type { Recognizer, RecognizerOutput, TrainingContext, TrainingLoss } from "../recognizer.ts";
import type { LanguageModelConfig } from "./abinet_config.ts";
import { BCNLanguage } from "./language.ts";
import { smoothedTargets, softCrossEntropy } from "./loss.ts";

export const LANGUAGE_FAMILY = "abinet_language";

/** A text batch: `labels`/`lengths` are the clean words (targets), `input*` the noisy ones. */
export interface TextBatch extends Batch {
  inputLabels: Int32Array;
  inputLengths: Int32Array;
}

export class AbinetLanguageModel implements Recognizer {
  readonly family = LANGUAGE_FAMILY;
  readonly config: Record<string, unknown>;
  readonly positions: number;
  readonly weights: Map<string, tf.Variable>;
  readonly buffers: Map<string, tf.Variable>;
  readonly store: ParamStore;
  readonly bcn: BCNLanguage;

  constructor(readonly resolved: LanguageModelConfig, readonly seed: number, readonly numClasses: number) {
    this.config = { ...resolved };
    this.positions = resolved.max_length + 1;
    this.store = new ParamStore(seed);
    this.bcn = new BCNLanguage(this.store.root(), {
      dModel: resolved.d_model,
      nhead: resolved.nhead,
      ffn: resolved.ffn,
      numLayers: resolved.num_layers,
      dropout: resolved.dropout,
      positions: this.positions,
      numClasses,
      detach: resolved.detach,
    });
    this.weights = this.store.weights;
    this.buffers = this.store.buffers;
  }

  /** One-hot `[B, T, C]` of encoded words and their lengths clamped to [2, T] (ABINet's range). */
  #inputs(labels: Int32Array, lengths: Int32Array): { tokens: tf.Tensor3D; lengths: Int32Array } {
    const b = lengths.length, t = this.positions;
    if (labels.length !== b * t) throw new Error(`${LANGUAGE_FAMILY}: ${labels.length} labels for ${b}×${t}`);
    // oneHot in int32 then cast: wasm's float32 oneHot is broken in tfjs 4.22.
    const tokens = tf.tidy(() =>
      tf.cast(tf.reshape(tf.oneHot(tf.tensor1d(labels, "int32"), this.numClasses), [b, t, this.numClasses]), "float32")
    ) as tf.Tensor3D;
    return { tokens, lengths: lengths.map((l) => Math.min(Math.max(l, 2), t)) };
  }

  /** Eval forward: logits `[B, T, C]` for encoded (noisy) words. */
  correct(labels: Int32Array, lengths: Int32Array): tf.Tensor3D {
    const x = this.#inputs(labels, lengths);
    try {
      return tf.tidy(() => this.bcn.apply(x.tokens, x.lengths, EVAL).logits);
    } finally {
      x.tokens.dispose();
    }
  }

  predict(_images: tf.Tensor4D): RecognizerOutput {
    throw new Error(`${LANGUAGE_FAMILY}: the language model reads text, not images (use it inside an abinet model)`);
  }

  trainingLoss(batch: Batch, _images: tf.Tensor4D, ctx: TrainingContext): TrainingLoss {
    const text = batch as TextBatch;
    if (!text.inputLabels) throw new Error(`${LANGUAGE_FAMILY}: training needs a text batch (pretrain_lm)`);
    const x = this.#inputs(text.inputLabels, text.inputLengths);
    const out = this.bcn.apply(x.tokens, x.lengths, trainContext(deriveSeed(this.seed, "dropout", ctx.step)));
    const targets = smoothedTargets(batch.labels, this.numClasses, this.resolved.label_smoothing, ctx.random);
    const loss = softCrossEntropy(out.logits, targets, batch.lengths);
    return { loss, parts: { language: tf.clone(loss) } };
  }

  parameterCount(): number {
    return this.store.parameterCount();
  }

  dispose(): void {
    this.bcn.dispose();
    this.store.dispose();
  }
}
