/**
 * The `abinet` model family: the full ABINet (`ABINetIterModel`), written from the paper —
 *
 *     vision (ResNet45 + transformer, PositionAttention) → logits_v, v_feature
 *     a ← logits_v
 *     repeat iter_size times:
 *         l = BCN(softmax(a), lengths(a))          the language model's input is detached from the graph
 *         a = alignment(l.feature, v_feature)
 *     predict = the last alignment's logits
 *
 * Loss (as the official `MultiLosses`): `w_v·CE(vision) + w_l·mean_i CE(language_i) + w_a·mean_i
 * CE(alignment_i)`, each a cross-entropy over the valid positions (`t < length`), with the official random label
 * smoothing when `label_smoothing` > 0. Terms with weight 0 are left out.
 *
 * State-dict names (`state()`, PyTorch layouts) are the official ones: `vision.*`, `language.*`,
 * `alignment.*`. `initFrom("vision", …)` takes an `abinet_vision` checkpoint, `initFrom("language", …)` a
 * `pretrain_lm` (`abinet_language`) checkpoint; either also accepts an `abinet` checkpoint's part.
 */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../../data/batch.ts";
import { EVAL, type ForwardContext, trainContext } from "../nn/layers.ts";
import { ParamStore } from "../nn/params.ts";
import { deriveSeed } from "../nn/rng.ts";
import { type LoadOptions, loadStateDict, stateDict } from "../nn/state.ts";
import type { Recognizer, RecognizerOutput, TrainingContext, TrainingLoss } from "../recognizer.ts";
import { registerModelFamily } from "../recognizer.ts";
import type { NamedTensor } from "../safetensors.ts";
import { type AbinetConfig, abinetSchema, resolveAbinet } from "./abinet_config.ts";
import { BaseAlignment } from "./alignment.ts";
import { BCNLanguage, languageLengths, type LanguageOutput } from "./language.ts";
import { smoothedTargets, softCrossEntropy } from "./loss.ts";
import { BaseVision, baseVisionConfig, type VisionOutput } from "./vision.ts";

export const FAMILY = "abinet";

export interface AbinetIteration {
  language: LanguageOutput;
  /** The language model's input lengths (predicted, clamped to [2, T]). */
  lengths: Int32Array;
  alignment: { feature: tf.Tensor3D; logits: tf.Tensor3D };
}

export interface AbinetOutput {
  vision: VisionOutput;
  iterations: AbinetIteration[];
}

/** Copies `tensors` (strata checkpoint: tfjs layouts) into the store entries under `prefix`. */
export function assignPart(
  store: ParamStore,
  prefix: string,
  tensors: ReadonlyMap<string, NamedTensor>,
  sourcePrefix: string,
  source: string,
): number {
  let n = 0;
  for (const [name, entry] of store.entries) {
    if (!name.startsWith(prefix)) continue;
    const key = sourcePrefix + name.slice(prefix.length);
    const t = tensors.get(key);
    if (!t) throw new Error(`${source}: tensor "${key}" (for ${name}) is missing`);
    const v = entry.variable;
    if (t.shape.join() !== v.shape.join()) {
      throw new Error(`${source}: tensor "${key}" has shape [${t.shape}], ${name} is [${v.shape}]`);
    }
    if (t.dtype !== "F32") throw new Error(`${source}: tensor "${key}" is ${t.dtype}, expected F32`);
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, "float32")));
    n++;
  }
  if (n === 0) throw new Error(`models/abinet/abinet.ts: the model has no entries under "${prefix}"`);
  return n;
}

export class AbinetModel implements Recognizer {
  readonly family: string = FAMILY;
  readonly config: Record<string, unknown>;
  readonly positions: number;
  readonly numClasses: number;
  readonly weights: Map<string, tf.Variable>;
  readonly buffers: Map<string, tf.Variable>;
  readonly store: ParamStore;
  readonly vision: BaseVision;
  readonly language: BCNLanguage;
  readonly alignment: BaseAlignment;

  constructor(readonly resolved: AbinetConfig, readonly seed: number, numClasses: number) {
    this.config = structuredClone(resolved) as unknown as Record<string, unknown>;
    const v = resolved.vision, l = resolved.language;
    this.positions = v.max_length + 1;
    this.numClasses = numClasses;
    this.store = new ParamStore(seed);
    const root = this.store.root();
    this.vision = new BaseVision(root.child("vision"), baseVisionConfig(v, numClasses));
    this.language = new BCNLanguage(root.child("language"), {
      dModel: v.d_model,
      nhead: l.nhead,
      ffn: l.ffn,
      numLayers: l.num_layers,
      dropout: l.dropout,
      positions: this.positions,
      numClasses,
      detach: l.detach,
    });
    this.alignment = new BaseAlignment(root.child("alignment"), v.d_model, numClasses);
    this.weights = this.store.weights;
    this.buffers = this.store.buffers;
  }

  #checkImages(images: tf.Tensor4D): void {
    const c = this.resolved.vision;
    const [, h, w, ch] = images.shape;
    if (h !== c.image_height || w !== c.image_width || ch !== c.image_channels) {
      throw new Error(
        `${FAMILY}: images are ${h}×${w}×${ch} (NHWC), the model expects ${c.image_height}×${c.image_width}×${c.image_channels}`,
      );
    }
  }

  /** Full forward (call inside a tidy). `iterations` defaults to the config's `iter_size`. */
  forward(images: tf.Tensor4D, ctx: ForwardContext = EVAL, iterations = this.resolved.iter_size): AbinetOutput {
    this.#checkImages(images);
    const vision = this.vision.apply(images, ctx);
    const out: AbinetOutput = { vision, iterations: [] };
    let logits = vision.logits;
    for (let i = 0; i < iterations; i++) {
      const lengths = languageLengths(logits);
      const language = this.language.apply(tf.softmax(logits, -1) as tf.Tensor3D, lengths, ctx);
      const alignment = this.alignment.apply(language.feature, vision.attnVecs);
      out.iterations.push({ language, lengths, alignment });
      logits = alignment.logits;
    }
    return out;
  }

  predict(images: tf.Tensor4D): RecognizerOutput {
    return tf.tidy(() => {
      const o = this.forward(images);
      return { logits: o.iterations.at(-1)?.alignment.logits ?? o.vision.logits };
    });
  }

  predictOutputs(images: tf.Tensor4D): Map<string, tf.Tensor3D> {
    const list = tf.tidy(() => {
      const o = this.forward(images);
      const named: tf.Tensor3D[] = [o.vision.logits];
      for (const it of o.iterations) named.push(it.language.logits, it.alignment.logits);
      return named;
    });
    const out = new Map<string, tf.Tensor3D>([["vision", list[0]]]);
    for (let i = 0; i < this.resolved.iter_size; i++) {
      out.set(`language_${i + 1}`, list[1 + 2 * i]);
      out.set(`alignment_${i + 1}`, list[2 + 2 * i]);
    }
    return out;
  }

  trainingLoss(batch: Batch, images: tf.Tensor4D, ctx: TrainingContext): TrainingLoss {
    const b = images.shape[0];
    if (batch.labels.length !== b * this.positions) {
      throw new Error(`${FAMILY}: batch labels hold ${batch.labels.length} values, expected ${b}×${this.positions}`);
    }
    const c = this.resolved;
    const o = this.forward(images, trainContext(deriveSeed(this.seed, "dropout", ctx.step)));
    const targets = smoothedTargets(batch.labels, this.numClasses, c.label_smoothing, ctx.random);
    const ce = (logits: tf.Tensor3D) => softCrossEntropy(logits, targets, batch.lengths);
    const mean = (xs: tf.Scalar[]) => tf.div(tf.addN(xs), xs.length) as tf.Scalar;
    const parts: Record<string, tf.Scalar> = {};
    const terms: tf.Scalar[] = [];
    const w = c.loss_weights;
    if (w.vision > 0) {
      parts.vision = ce(o.vision.logits);
      terms.push(tf.mul(parts.vision, w.vision));
    }
    if (w.language > 0 && o.iterations.length > 0) {
      parts.language = mean(o.iterations.map((it) => ce(it.language.logits)));
      terms.push(tf.mul(parts.language, w.language));
    }
    if (w.alignment > 0 && o.iterations.length > 0) {
      parts.alignment = mean(o.iterations.map((it) => ce(it.alignment.logits)));
      terms.push(tf.mul(parts.alignment, w.alignment));
    }
    if (terms.length === 0) throw new Error(`${FAMILY}: every loss weight is 0`);
    return { loss: tf.addN(terms) as tf.Scalar, parts };
  }

  initFrom(part: string, family: string, tensors: ReadonlyMap<string, NamedTensor>, source: string): number {
    const accepted: Record<string, string[]> = {
      vision: ["abinet_vision", FAMILY],
      language: ["abinet_language", FAMILY],
    };
    if (!accepted[part]) throw new Error(`${FAMILY}: no part "${part}" to initialise (vision, language)`);
    if (!accepted[part].includes(family)) {
      throw new Error(
        `${source}: a ${family} checkpoint cannot initialise the ${part} model (expected ${
          accepted[part].join(" or ")
        })`,
      );
    }
    return assignPart(this.store, `${part}.`, tensors, family === FAMILY ? `${part}.` : "", source);
  }

  /** Every weight and buffer in PyTorch layout under the official names. */
  state(): Map<string, NamedTensor> {
    return stateDict(this.store);
  }

  /** Loads a PyTorch-layout state_dict of the official model (`module.` prefixes stripped); strict by default. */
  loadState(state: Map<string, NamedTensor>, opts: LoadOptions = {}): string[] {
    return loadStateDict(this.store, state, { stripPrefixes: ["module."], ...opts });
  }

  parameterCount(): number {
    return this.store.parameterCount();
  }

  dispose(): void {
    this.language.dispose();
    this.store.dispose();
  }
}

export const abinetFamily = registerModelFamily({
  name: FAMILY,
  description: "ABINet: vision model, BCN language model and gated alignment with iterative correction",
  config: abinetSchema,
  create(config, seed, numClasses) {
    return new AbinetModel(resolveAbinet(config as Record<string, unknown>), seed, numClasses);
  },
  module: import.meta.url,
});
