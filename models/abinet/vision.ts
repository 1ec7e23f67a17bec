/**
 * ABINet's `BaseVision`: `backbone` (ResTranformer) → `attention` (PositionAttention) → `cls`
 * Linear(C, numClasses). State-dict names are those of the official module (`backbone.resnet.…`,
 * `backbone.transformer.layers.i.…`, `attention.k_encoder.…`, `cls.weight`).
 */
import * as tf from "@tensorflow/tfjs";
import type { ForwardContext } from "../nn/layers.ts";
import { Linear } from "../nn/layers.ts";
import type { Scope } from "../nn/params.ts";
import { type BackboneConfig, ResTransformer } from "./backbone.ts";
import { type AbinetVisionConfig, featureSize } from "./config.ts";
import { PositionAttention } from "./position_attention.ts";

export interface BaseVisionConfig {
  backbone: BackboneConfig;
  attentionChannels: number;
  attentionStrides?: [number, number][];
  /** T = max_length + 1. */
  positions: number;
  numClasses: number;
}

export interface VisionOutput {
  /** `[B, T, numClasses]`. */
  logits: tf.Tensor3D;
  /** `[B, T, C]`. */
  attnVecs: tf.Tensor3D;
  /** `[B, T, h, w]`. */
  attnScores: tf.Tensor4D;
  /** `[B, h, w, C]` ResTranformer output. */
  backboneFeatures: tf.Tensor4D;
  /** `[B, h, w, C]` ResNet output. */
  resnetFeatures: tf.Tensor4D;
}

/** The module config of a family config (`abinet_vision`, and the vision part of `abinet`). */
export function baseVisionConfig(config: AbinetVisionConfig, numClasses: number): BaseVisionConfig {
  const [fh, fw] = featureSize(config);
  return {
    backbone: {
      resnet: {
        inChannels: config.image_channels,
        stemChannels: config.stem_channels,
        stages: config.stage_channels.map((channels, i) => ({
          channels,
          blocks: config.stage_blocks[i],
          stride: config.stage_strides[i],
        })),
      },
      featureHeight: fh,
      featureWidth: fw,
      layer: { dModel: config.d_model, nhead: config.nhead, ffn: config.ffn, dropout: config.dropout },
      numLayers: config.num_layers,
    },
    attentionChannels: config.attention_channels,
    attentionStrides: config.attention_strides as [number, number][],
    positions: config.max_length + 1,
    numClasses,
  };
}

export class BaseVision {
  readonly backbone: ResTransformer;
  readonly attention: PositionAttention;
  readonly cls: Linear;

  constructor(scope: Scope, readonly config: BaseVisionConfig) {
    this.backbone = new ResTransformer(scope.child("backbone"), config.backbone);
    const d = config.backbone.layer.dModel;
    this.attention = new PositionAttention(scope.child("attention"), {
      maxLength: config.positions,
      inChannels: d,
      numChannels: config.attentionChannels,
      height: config.backbone.featureHeight,
      width: config.backbone.featureWidth,
      strides: config.attentionStrides,
    });
    this.cls = new Linear(scope.child("cls"), d, config.numClasses);
  }

  /** NHWC images → outputs (call inside a tidy). */
  apply(images: tf.Tensor4D, ctx: ForwardContext): VisionOutput {
    const taps: { resnet?: tf.Tensor4D } = {};
    const backboneFeatures = this.backbone.apply(images, ctx, taps);
    const { attnVecs, attnScores } = this.attention.apply(backboneFeatures, ctx);
    const logits = this.cls.apply(attnVecs);
    return { logits, attnVecs, attnScores, backboneFeatures, resnetFeatures: taps.resnet! };
  }
}
