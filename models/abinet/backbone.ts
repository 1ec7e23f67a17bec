/**
 * ABINet's `ResTranformer` backbone: ResNet45 → flatten the `h×w` map row-major into `h·w` positions
 * → add the sinusoidal positional encoding (`pos_encoder.pe`, `[h·w, 1, d]`) → dropout → N post-LN
 * encoder layers (`transformer.layers.i`) → back to a `[B, h, w, d]` map.
 */
import * as tf from "@tensorflow/tfjs";
import { dropout, type ForwardContext } from "../nn/layers.ts";
import type { Scope } from "../nn/params.ts";
import { sinusoidalTable } from "../nn/positional.ts";
import { ResNet, type ResNetConfig } from "./resnet.ts";
import { type EncoderLayerConfig, TransformerEncoderLayer } from "./transformer.ts";

export interface BackboneConfig {
  resnet: ResNetConfig;
  /** Feature-map size after the ResNet (the positional table has `h·w` rows). */
  featureHeight: number;
  featureWidth: number;
  layer: EncoderLayerConfig;
  numLayers: number;
}

export interface BackboneTaps {
  resnet?: tf.Tensor4D;
}

export class ResTransformer {
  readonly resnet: ResNet;
  readonly pe: tf.Variable;
  readonly layers: TransformerEncoderLayer[];

  constructor(scope: Scope, readonly config: BackboneConfig) {
    this.resnet = new ResNet(scope.child("resnet"), config.resnet);
    const d = config.layer.dModel;
    if (this.resnet.outChannels !== d) {
      throw new Error(
        `models/abinet/backbone.ts: d_model ${d} must equal the last ResNet width ${this.resnet.outChannels}`,
      );
    }
    const positions = config.featureHeight * config.featureWidth;
    this.pe = scope.child("pos_encoder").buffer("pe", [positions, 1, d], () => sinusoidalTable(positions, d));
    const layers = scope.child("transformer").child("layers");
    this.layers = Array.from(
      { length: config.numLayers },
      (_, i) => new TransformerEncoderLayer(layers.child(i), config.layer),
    );
  }

  /** `[B, H, W, C]` images → `[B, h, w, d]` features. */
  apply(images: tf.Tensor4D, ctx: ForwardContext, taps?: BackboneTaps): tf.Tensor4D {
    const features = this.resnet.apply(images, ctx);
    if (taps) taps.resnet = features;
    const [b, h, w, d] = features.shape;
    if (h !== this.config.featureHeight || w !== this.config.featureWidth) {
      throw new Error(
        `models/abinet/backbone.ts: feature map ${h}×${w}, the model was built for ${this.config.featureHeight}×${this.config.featureWidth} (check the image size)`,
      );
    }
    let x = tf.reshape(features, [b, h * w, d]) as tf.Tensor3D;
    x = dropout(tf.add(x, tf.reshape(this.pe, [h * w, d])), this.config.layer.dropout, ctx);
    for (const layer of this.layers) {
      const input = x;
      x = tf.tidy(() => layer.apply(input, ctx));
    }
    return tf.reshape(x, [b, h, w, d]) as tf.Tensor4D;
  }
}
