/**
 * The `conclr_vision` model family: ABINet-Vision (`models/abinet/`, the same backbone, PositionAttention
 * and classifier, built by `AbinetVisionModel`) plus ConCLR's projection head on the attention vectors
 * (glimpses), trained with ConAug views and the character-level contrastive loss.
 *
 * Weights: the vision weights and buffers under exactly the `abinet_vision` names (`backbone.…`,
 * `attention.…`, `cls.…`), so evaluation and `read` treat both families alike, plus
 * `projection_head.head.0.{weight,bias}` / `projection_head.head.2.{weight,bias}` (mlp) or
 * `projection_head.head.{weight,bias}` (linear), ConCLR's state-dict names.
 *
 * Training loss for one batch (ConCLR `TotalLosses`):
 *
 *   loss = w0·CE(original) + w1·CE(aug1) + w2·CE(aug2) + α·contrastive(aug1, aug2)
 *
 * with `view_weights` [w0, w1, w2] (default [1, 0.5, 0.5]), CE = ABINet's vision cross-entropy over the
 * positions up to each (augmented) length including the EOS, and the contrastive loss over the projected
 * glimpses of the two ConAug views with their augmented labels (temperature τ, default 2). The reported
 * `parts` are the unweighted terms: `ce_original`, `ce_aug1`, `ce_aug2`, `contrastive`.
 *
 * The three views go through the model as three separate train-mode forward passes, as ConCLR's
 * `ConCLR_Vision.forward` loops over the views: BatchNorm normalises each view with its own batch
 * statistics and updates its running statistics once per view (three momentum updates per step).
 * Concatenating the views into one batch would mix their statistics and would not match ConCLR; on the
 * CPU / wasm backends it would also save nothing but per-op overhead. Dropout masks differ per view;
 * the original view uses the same dropout seed as `abinet_vision` at the same (seed, step).
 *
 * `predict` is the vision model's eval-mode forward; the projection head is used in training only.
 */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../../data/batch.ts";
import type { AbinetVisionConfig } from "../abinet/config.ts";
import { visionCrossEntropy } from "../abinet/loss.ts";
import { AbinetVisionModel } from "../abinet/mod.ts";
import { deriveSeed } from "../nn/rng.ts";
import type { LoadOptions } from "../nn/state.ts";
import type {
  ModelFamily,
  PredictOptions,
  Recognizer,
  RecognizerOutput,
  TrainingContext,
  TrainingLoss,
} from "../recognizer.ts";
import type { NamedTensor } from "../safetensors.ts";
import { conAugViews } from "./conaug.ts";
import { contrastiveLoss } from "./contrastive_loss.ts";
import { ProjectionHead } from "./projection_head.ts";

export {
  CONCLR_DEFAULTS,
  type ConclrFields,
  type ConclrVisionConfig,
  configSchema,
  FAMILY,
  resolveConclrConfig,
} from "./config.ts";
import {
  CONCLR_DEFAULTS,
  type ConclrFields,
  type ConclrVisionConfig,
  configSchema,
  FAMILY,
  resolveConclrConfig,
} from "./config.ts";

export class ConclrVisionModel implements Recognizer {
  readonly family: string = FAMILY;
  readonly config: Record<string, unknown>;
  readonly resolved: ConclrVisionConfig;
  readonly positions: number;
  readonly numClasses: number;
  readonly weights: Map<string, tf.Variable>;
  readonly buffers: Map<string, tf.Variable>;
  /** The vision model; its ParamStore also holds the projection head. */
  readonly vision: AbinetVisionModel;
  readonly head: ProjectionHead;

  constructor(config: ConclrVisionConfig, readonly seed: number, numClasses: number) {
    this.resolved = config;
    this.config = structuredClone(config) as unknown as Record<string, unknown>;
    const visionConfig: Record<string, unknown> = { ...config };
    for (const k of Object.keys(CONCLR_DEFAULTS)) delete visionConfig[k];
    this.vision = new AbinetVisionModel(visionConfig as unknown as AbinetVisionConfig, seed, numClasses);
    this.head = new ProjectionHead(this.vision.store.root().child("projection_head"), {
      inputDim: config.d_model,
      outputDim: config.projection_dim,
      kind: config.projection,
    });
    this.positions = this.vision.positions;
    this.numClasses = numClasses;
    this.weights = this.vision.store.weights;
    this.buffers = this.vision.store.buffers;
  }

  predict(images: tf.Tensor4D, opts?: PredictOptions): RecognizerOutput {
    return this.vision.predict(images, opts);
  }

  trainingLoss(batch: Batch, images: tf.Tensor4D, ctx: TrainingContext): TrainingLoss {
    const b = images.shape[0];
    if (batch.labels.length !== b * this.positions || batch.lengths.length !== b) {
      throw new Error(
        `${FAMILY}: batch has ${batch.labels.length} labels and ${batch.lengths.length} lengths, expected ${b}×${this.positions} and ${b}`,
      );
    }
    const c = this.resolved;
    const views = conAugViews(images, batch, ctx.random, 2);
    const pass = (x: tf.Tensor4D, view: number) =>
      this.vision.forward(
        x,
        true,
        view === 0 ? deriveSeed(this.seed, "dropout", ctx.step) : deriveSeed(this.seed, "dropout", ctx.step, view),
      );
    const original = pass(images, 0);
    const aug1 = pass(views[0].images, 1);
    const aug2 = pass(views[1].images, 2);
    const ceOriginal = visionCrossEntropy(original.logits, batch.labels, batch.lengths);
    const ceAug1 = visionCrossEntropy(aug1.logits, views[0].labels, views[0].lengths);
    const ceAug2 = visionCrossEntropy(aug2.logits, views[1].labels, views[1].lengths);
    const contrastive = contrastiveLoss(
      this.head.apply(aug1.attnVecs),
      this.head.apply(aug2.attnVecs),
      views[0].labels,
      views[1].labels,
      { temperature: c.temperature },
    );
    const [w0, w1, w2] = c.view_weights;
    const loss = tf.addN([
      tf.mul(ceOriginal, w0),
      tf.mul(ceAug1, w1),
      tf.mul(ceAug2, w2),
      tf.mul(contrastive, c.alpha),
    ]) as tf.Scalar;
    return { loss, parts: { ce_original: ceOriginal, ce_aug1: ceAug1, ce_aug2: ceAug2, contrastive } };
  }

  /** Every weight and buffer in PyTorch layout (vision names + `projection_head.…`). */
  state(): Map<string, NamedTensor> {
    return this.vision.state();
  }

  /**
   * Loads a PyTorch-layout state_dict. Strict by default; pass `{strict: false}` to start from an
   * `abinet_vision` checkpoint (the projection head then keeps its initialisation).
   */
  loadState(state: Map<string, NamedTensor>, opts: LoadOptions = {}): string[] {
    return this.vision.loadState(state, opts);
  }

  parameterCount(): number {
    return this.vision.parameterCount();
  }

  dispose(): void {
    this.vision.dispose();
  }
}

export const conclrVisionFamily: ModelFamily<Partial<AbinetVisionConfig> & Partial<ConclrFields>> = {
  name: FAMILY,
  description: "ConCLR-Vision: ABINet-Vision + ConAug views + projection head and character contrastive loss",
  config: configSchema,
  create(config, seed, numClasses) {
    return new ConclrVisionModel(resolveConclrConfig(config), seed, numClasses);
  },
  module: import.meta.url,
};
