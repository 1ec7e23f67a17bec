/**
 * The contract between models and the train / evaluate / read stages.
 * A model family registers a factory; the stages stay model-agnostic.
 */
import type * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batch.ts";
import type { ObjectSchema } from "../pipeline/schema.ts";
import type { NamedTensor } from "./safetensors.ts";

export interface RecognizerOutput {
  /** [batch, maxLength + 1, numClasses] logits (class 0 = null/EOS). */
  logits: tf.Tensor3D;
  /** [batch, maxLength + 1, h, w] position-attention maps over the feature grid, when asked for and the family
   * has them (`read --attention`). */
  attention?: tf.Tensor4D;
}

/**
 * Inference-time options: decoding (strhub's `decode_ar` / `refine_iters`; families list the ones they honour)
 * and whether to return the position-attention maps.
 */
export interface PredictOptions {
  /** Also return the position-attention maps. */
  attention?: boolean;
  /** Autoregressive (true) or non-autoregressive (false) decoding. */
  decodeAr?: boolean;
  /** Iterative refinement passes after the first decoding. */
  refineIters?: number;
}

export interface TrainingLoss {
  /** The scalar to minimise. */
  loss: tf.Scalar;
  /** Named parts for logging (e.g. ce_original, contrastive), scalars. */
  parts: Record<string, tf.Scalar>;
}

export interface TrainingContext {
  step: number;
  /** Deterministic per-step random source for batch-level transforms (e.g. ConAug). */
  random: () => number;
}

export interface Recognizer {
  readonly family: string;
  /** The validated config the model was built from (stored in checkpoints). */
  readonly config: Record<string, unknown>;
  /** maxLength + 1 positions, numClasses outputs. */
  readonly positions: number;
  readonly numClasses: number;
  /** Trainable weights by stable, documented name (checkpoint keys). */
  readonly weights: Map<string, tf.Variable>;
  /** Non-trainable state (BatchNorm running statistics) by name. */
  readonly buffers: Map<string, tf.Variable>;
  /**
   * Every weight and buffer in PyTorch layout (OIHW convs, `[out, in]` linears) under the official names.
   * Checkpoints are written from it; families without it are checkpointed in tfjs layout.
   */
  state?(): Map<string, NamedTensor>;
  /** Loads a PyTorch-layout state (strict: every entry, no unknown name); returns the names assigned. */
  loadState?(state: Map<string, NamedTensor>, opts?: { strict?: boolean; source?: string }): string[];
  /** The `PredictOptions` this family honours, as evaluate / read params (`decode_ar`, `refine_iters`). */
  readonly decodingParams?: readonly ("decode_ar" | "refine_iters")[];
  /** Eval-mode forward on NHWC images; families without decoding options ignore `opts`. */
  predict(images: tf.Tensor4D, opts?: PredictOptions): RecognizerOutput;
  /**
   * Optional: every named output of one eval forward (`[B, T, numClasses]` logits each, caller disposes), in a
   * stable order whose last entry equals what `predict` returns (ABINet: `vision`, `language_1`,
   * `alignment_1`, …). Evaluation then scores each output as well. `opts` as for `predict`.
   */
  predictOutputs?(images: tf.Tensor4D, opts?: PredictOptions): Map<string, tf.Tensor3D>;
  /**
   * Optional: initialises a part of the model from another model's checkpoint (the train stage's
   * `init_<part>` inputs). `tensors` are a strata checkpoint's tensors (tfjs layouts, the source model's
   * names), `family` its model family. Returns how many tensors were assigned; throws on a mismatch.
   */
  initFrom?(part: string, family: string, tensors: ReadonlyMap<string, NamedTensor>, source: string): number;
  /** Train-mode loss for one batch; called inside the optimiser's gradient scope. */
  trainingLoss(batch: Batch, images: tf.Tensor4D, ctx: TrainingContext): TrainingLoss;
  dispose(): void;
}

export interface ModelFamily<C = Record<string, unknown>> {
  readonly name: string;
  readonly description: string;
  readonly config: ObjectSchema<C>;
  /** Builds a model with weights initialised from `seed`. */
  create(config: C, seed: number, numClasses: number): Recognizer;
  /** `import.meta.url` of the module, for the code digest of stages that use it. */
  readonly module: string;
}

const families = new Map<string, ModelFamily<unknown>>();

export function registerModelFamily<C>(family: ModelFamily<C>): ModelFamily<C> {
  families.set(family.name, family as ModelFamily<unknown>);
  return family;
}

export function getModelFamily(name: string): ModelFamily<unknown> {
  const f = families.get(name);
  if (!f) throw new Error(`unknown model "${name}"; known: ${[...families.keys()].join(", ") || "(none)"}`);
  return f;
}

export function modelFamilies(): string[] {
  return [...families.keys()].sort();
}
