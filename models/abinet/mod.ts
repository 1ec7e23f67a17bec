/**
 * The `abinet_vision` model family: ABINet's vision model (ResNet45 + transformer backbone,
 * PositionAttention, linear classifier) trained with its vision cross-entropy.
 *
 * Weights and buffers are named as the official `BaseVision` state_dict (`backbone.resnet.conv1.weight`,
 * `backbone.transformer.layers.0.self_attn.in_proj_weight`, `attention.project.weight`, `cls.bias`,
 * BN `running_mean`/`running_var`, `backbone.pos_encoder.pe`, `attention.pos_encoder.pe`; no
 * `num_batches_tracked`). The `weights`/`buffers` maps hold tfjs layouts (HWIO convs, `[in, out]`
 * linears); `state()` / `loadState()` give and take PyTorch layouts (official checkpoints, fixtures).
 */
import * as tf from "@tensorflow/tfjs";
import "./abinet.ts"; // registers the `abinet` family beside `abinet_vision`
import type { Batch } from "../../data/batch.ts";
import { EVAL, trainContext } from "../nn/layers.ts";
import { ParamStore } from "../nn/params.ts";
import { deriveSeed } from "../nn/rng.ts";
import { type LoadOptions, loadStateDict, stateDict } from "../nn/state.ts";
import type { PredictOptions, Recognizer, RecognizerOutput, TrainingContext, TrainingLoss } from "../recognizer.ts";
import { registerModelFamily } from "../recognizer.ts";
import type { NamedTensor } from "../safetensors.ts";
import { type AbinetVisionConfig, configSchema, resolveConfig } from "./config.ts";
import { visionCrossEntropy } from "./loss.ts";
import { BaseVision, baseVisionConfig, type VisionOutput } from "./vision.ts";

export const FAMILY = "abinet_vision";

export class AbinetVisionModel implements Recognizer {
  readonly family: string = FAMILY;
  readonly config: Record<string, unknown>;
  readonly resolved: AbinetVisionConfig;
  readonly positions: number;
  readonly numClasses: number;
  readonly weights: Map<string, tf.Variable>;
  readonly buffers: Map<string, tf.Variable>;
  readonly store: ParamStore;
  readonly vision: BaseVision;

  constructor(config: AbinetVisionConfig, readonly seed: number, numClasses: number) {
    this.resolved = config;
    this.config = { ...config };
    this.positions = config.max_length + 1;
    this.numClasses = numClasses;
    this.store = new ParamStore(seed);
    this.vision = new BaseVision(this.store.root(), baseVisionConfig(config, numClasses));
    this.weights = this.store.weights;
    this.buffers = this.store.buffers;
  }

  #checkImages(images: tf.Tensor4D): void {
    const c = this.resolved;
    const [, h, w, ch] = images.shape;
    if (h !== c.image_height || w !== c.image_width || ch !== c.image_channels) {
      throw new Error(
        `${FAMILY}: images are ${h}×${w}×${ch} (NHWC), the model expects ${c.image_height}×${c.image_width}×${c.image_channels}`,
      );
    }
  }

  /** Full forward (caller disposes, or wraps in a tidy). `training` = dropout and BN batch statistics. */
  forward(images: tf.Tensor4D, training = false, dropoutSeed = 0): VisionOutput {
    this.#checkImages(images);
    return this.vision.apply(images, training ? trainContext(dropoutSeed) : EVAL);
  }

  predict(images: tf.Tensor4D, opts: PredictOptions = {}): RecognizerOutput {
    return tf.tidy(() => {
      const out = this.forward(images);
      return opts.attention ? { logits: out.logits, attention: out.attnScores } : { logits: out.logits };
    });
  }

  /**
   * Train mode: dropout masks depend on (seed, step) only, so a resumed run repeats them; BatchNorm
   * uses batch statistics and updates its running statistics (momentum 0.1). Loss: see `loss.ts`.
   */
  trainingLoss(batch: Batch, images: tf.Tensor4D, ctx: TrainingContext): TrainingLoss {
    const b = images.shape[0];
    if (batch.labels.length !== b * this.positions) {
      throw new Error(`${FAMILY}: batch labels hold ${batch.labels.length} values, expected ${b}×${this.positions}`);
    }
    const { logits } = this.forward(images, true, deriveSeed(this.seed, "dropout", ctx.step));
    const loss = visionCrossEntropy(logits, batch.labels, batch.lengths);
    return { loss, parts: { ce: tf.clone(loss) } };
  }

  /** Every weight and buffer in PyTorch layout under the official names. */
  state(): Map<string, NamedTensor> {
    return stateDict(this.store);
  }

  /**
   * Loads a PyTorch-layout state_dict (official names; `module.` / `vision.` prefixes are stripped).
   * Strict by default: every weight and buffer must be present and no unknown name may appear.
   */
  loadState(state: Map<string, NamedTensor>, opts: LoadOptions = {}): string[] {
    return loadStateDict(this.store, state, { stripPrefixes: ["module.", "vision."], ...opts });
  }

  parameterCount(): number {
    return this.store.parameterCount();
  }

  dispose(): void {
    this.store.dispose();
  }
}

export const abinetVisionFamily = registerModelFamily({
  name: FAMILY,
  description: "ABINet vision model: ResNet45 + transformer backbone, PositionAttention, linear classifier",
  config: configSchema,
  create(config, seed, numClasses) {
    return new AbinetVisionModel(resolveConfig(config as Partial<AbinetVisionConfig>), seed, numClasses);
  },
  module: import.meta.url,
});
