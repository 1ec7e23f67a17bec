/**
 * The `parseq` model family: PARSeq (ViT encoder, two-stream permutation decoder) trained with permutation
 * language modelling, decoded autoregressively or not, with cloze refinement (see model.ts).
 *
 * Class ids are strata's (0 = EOS, charset classes 1…), which is PARSeq's token layout too (tokenizer.ts), so
 * `predict` returns the head's logits as they are: `[B, max_length + 1, numClasses]`. AR decoding that stops
 * early (every row has emitted an EOS) is padded to `max_length + 1` positions with zero logits; those
 * positions lie after every row's first EOS, so the stages' greedy decoding (cut at the first EOS) never
 * reads them.
 *
 * Weights are named as strhub's `model.PARSeq` state_dict (no `model.` prefix; `loadState` strips `model.`).
 */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../../data/batch.ts";
import { trainContext } from "../nn/layers.ts";
import { ParamStore } from "../nn/params.ts";
import { deriveSeed } from "../nn/rng.ts";
import { type LoadOptions, loadStateDict, stateDict } from "../nn/state.ts";
import type { PredictOptions, Recognizer, RecognizerOutput, TrainingContext, TrainingLoss } from "../recognizer.ts";
import { registerModelFamily } from "../recognizer.ts";
import type { NamedTensor } from "../safetensors.ts";
import { configSchema, type ParseqConfig, resolveConfig } from "./config.ts";
import { type InferOptions, ParseqNet } from "./model.ts";
import { generatePermutations, permutationRandom } from "./permutations.ts";
import { targetsFromBatch } from "./tokenizer.ts";

export const FAMILY = "parseq";

export class ParseqModel implements Recognizer {
  readonly family: string = FAMILY;
  readonly config: Record<string, unknown>;
  readonly resolved: ParseqConfig;
  readonly positions: number;
  readonly numClasses: number;
  readonly weights: Map<string, tf.Variable>;
  readonly buffers: Map<string, tf.Variable>;
  readonly decodingParams = ["decode_ar", "refine_iters"] as const;
  readonly store: ParamStore;
  readonly net: ParseqNet;

  constructor(config: ParseqConfig, readonly seed: number, numClasses: number) {
    this.resolved = config;
    this.config = { ...config };
    this.positions = config.max_length + 1;
    this.numClasses = numClasses;
    this.store = new ParamStore(seed);
    this.net = new ParseqNet(this.store.root(), {
      imageHeight: config.image_height,
      imageWidth: config.image_width,
      channels: config.image_channels,
      patchHeight: config.patch_height,
      patchWidth: config.patch_width,
      embedDim: config.embed_dim,
      encDepth: config.enc_depth,
      encHeads: config.enc_num_heads,
      encMlpRatio: config.enc_mlp_ratio,
      decDepth: config.dec_depth,
      decHeads: config.dec_num_heads,
      decMlpRatio: config.dec_mlp_ratio,
      dropout: config.dropout,
      maxLength: config.max_length,
      numClasses,
    });
    this.weights = this.store.weights;
    this.buffers = this.store.buffers;
  }

  /** The decoding options in effect: the config's, overridden by `opts`. */
  inferOptions(opts: PredictOptions = {}): InferOptions {
    return {
      decodeAr: opts.decodeAr ?? this.resolved.decode_ar,
      refineIters: opts.refineIters ?? this.resolved.refine_iters,
    };
  }

  predict(images: tf.Tensor4D, opts: PredictOptions = {}): RecognizerOutput {
    const logits = this.net.infer(images, this.inferOptions(opts));
    const have = logits.shape[1];
    if (have === this.positions) return { logits };
    const padded = tf.tidy(() =>
      tf.concat([logits, tf.zeros([logits.shape[0], this.positions - have, logits.shape[2]])], 1) as tf.Tensor3D
    );
    logits.dispose();
    return { logits: padded };
  }

  /**
   * PLM loss. Permutations are drawn from the step's random source (`ctx.random`), dropout masks from
   * (seed, step), so a resumed run repeats both.
   */
  trainingLoss(batch: Batch, images: tf.Tensor4D, ctx: TrainingContext): TrainingLoss {
    const b = images.shape[0];
    if (batch.labels.length !== b * this.positions) {
      throw new Error(`${FAMILY}: batch labels hold ${batch.labels.length} values, expected ${b}×${this.positions}`);
    }
    const tgt = targetsFromBatch(batch.labels, batch.lengths, this.positions, this.numClasses);
    const perms = generatePermutations(
      tgt.length - 2,
      {
        permNum: this.resolved.perm_num,
        permForward: this.resolved.perm_forward,
        permMirrored: this.resolved.perm_mirrored,
      },
      permutationRandom(ctx.random),
    );
    const { loss, perPermutation } = this.net.plmLoss(
      images,
      tgt,
      perms,
      trainContext(deriveSeed(this.seed, "dropout", ctx.step)),
    );
    const parts: Record<string, tf.Scalar> = { plm: tf.clone(loss), ce_forward: perPermutation[0].ce };
    perPermutation.slice(1).forEach((p) => p.ce.dispose());
    return { loss, parts };
  }

  /** Every weight in PyTorch layout under strhub's names. */
  state(): Map<string, NamedTensor> {
    return stateDict(this.store);
  }

  /** Loads a PyTorch-layout state_dict (strhub names; `model.` / `module.` prefixes are stripped). */
  loadState(state: Map<string, NamedTensor>, opts: LoadOptions = {}): string[] {
    return loadStateDict(this.store, state, { stripPrefixes: ["module.", "model."], ...opts });
  }

  parameterCount(): number {
    return this.store.parameterCount();
  }

  dispose(): void {
    this.store.dispose();
  }
}

export const parseqFamily = registerModelFamily({
  name: FAMILY,
  description: "PARSeq: ViT encoder + two-stream permutation decoder (PLM training; AR / NAR decoding, refinement)",
  config: configSchema,
  create(config, seed, numClasses) {
    return new ParseqModel(resolveConfig(config as Partial<ParseqConfig>), seed, numClasses);
  },
  module: import.meta.url,
});
