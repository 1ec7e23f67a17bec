/**
 * PARSeq's image encoder: a ViT as timm 0.9.16's `VisionTransformer` with `class_token=False`,
 * `global_pool=''`, `num_classes=0`, `qkv_bias=True` (strhub `modules.Encoder`):
 *
 * - patch embedding: a conv with kernel = stride = patch size, flattened row-major (patch = row·cols + col);
 * - `+ pos_embed` (one learned row per patch, no class token);
 * - pre-norm blocks `x + attn(norm1(x))`, `x + mlp(norm2(x))` (fc1 → exact GELU → fc2);
 * - memory = `norm(x)`. Every LayerNorm here has eps **1e-6** (the decoder's have 1e-5).
 *
 * Names: `encoder.pos_embed`, `encoder.patch_embed.proj.{weight,bias}`,
 * `encoder.blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*`, `encoder.norm.*`.
 * Input NHWC images; output `[B, patches, E]`.
 */
import * as tf from "@tensorflow/tfjs";
import { type ForwardContext, LayerNorm, Linear } from "../nn/layers.ts";
import { kaimingNormalFanOut, normal, type Scope, zeros } from "../nn/params.ts";
import { attend, gelu } from "./attention.ts";

export const ENCODER_LN_EPS = 1e-6;

export interface EncoderOptions {
  imageHeight: number;
  imageWidth: number;
  channels: number;
  patchHeight: number;
  patchWidth: number;
  embedDim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
}

/** Initialisation as timm's `init_weights_vit_timm` (Linear: trunc normal std 0.02, bias 0). */
const linearInit = { weightInit: normal(0.02), biasInit: zeros };

class VitBlock {
  readonly norm1: LayerNorm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly norm2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(scope: Scope, readonly dim: number, readonly heads: number, mlpRatio: number) {
    this.norm1 = new LayerNorm(scope.child("norm1"), dim, ENCODER_LN_EPS);
    this.qkv = new Linear(scope.child("attn").child("qkv"), dim, 3 * dim, linearInit);
    this.proj = new Linear(scope.child("attn").child("proj"), dim, dim, linearInit);
    this.norm2 = new LayerNorm(scope.child("norm2"), dim, ENCODER_LN_EPS);
    this.fc1 = new Linear(scope.child("mlp").child("fc1"), dim, dim * mlpRatio, linearInit);
    this.fc2 = new Linear(scope.child("mlp").child("fc2"), dim * mlpRatio, dim, linearInit);
  }

  apply(x: tf.Tensor3D, ctx: ForwardContext): tf.Tensor3D {
    const [q, k, v] = tf.split(this.qkv.apply(this.norm1.apply(x)), 3, 2) as tf.Tensor3D[];
    x = tf.add(x, this.proj.apply(attend(q, k, v, this.heads, ctx)));
    return tf.add(x, this.fc2.apply(gelu(this.fc1.apply(this.norm2.apply(x)))));
  }
}

export class VitEncoder {
  readonly posEmbed: tf.Variable;
  readonly patchWeight: tf.Variable;
  readonly patchBias: tf.Variable;
  readonly blocks: VitBlock[];
  readonly norm: LayerNorm;
  readonly numPatches: number;

  constructor(scope: Scope, readonly o: EncoderOptions) {
    this.numPatches = (o.imageHeight / o.patchHeight) * (o.imageWidth / o.patchWidth);
    this.posEmbed = scope.weight("pos_embed", [1, this.numPatches, o.embedDim], "plain", normal(0.02));
    const proj = scope.child("patch_embed").child("proj");
    this.patchWeight = proj.weight(
      "weight",
      [o.embedDim, o.channels, o.patchHeight, o.patchWidth],
      "conv",
      kaimingNormalFanOut,
    );
    this.patchBias = proj.weight("bias", [o.embedDim], "plain", zeros);
    this.blocks = Array.from(
      { length: o.depth },
      (_, i) => new VitBlock(scope.child("blocks").child(i), o.embedDim, o.heads, o.mlpRatio),
    );
    this.norm = new LayerNorm(scope.child("norm"), o.embedDim, ENCODER_LN_EPS);
  }

  /** Patch embedding + position, `[B, patches, E]` (the fixture's `pos_embedded`). */
  embed(images: tf.Tensor4D): tf.Tensor3D {
    const { patchHeight: ph, patchWidth: pw, embedDim } = this.o;
    const y = tf.add(tf.conv2d(images, this.patchWeight as tf.Tensor4D, [ph, pw], "valid"), this.patchBias);
    return tf.add(tf.reshape(y, [images.shape[0], this.numPatches, embedDim]), this.posEmbed) as tf.Tensor3D;
  }

  /** `[B, patches, E]` memory; `trace` receives the per-block outputs when given. */
  apply(images: tf.Tensor4D, ctx: ForwardContext, trace?: (name: string, t: tf.Tensor) => void): tf.Tensor3D {
    let x = this.embed(images);
    trace?.("pos_embedded", x);
    this.blocks.forEach((block, i) => {
      x = block.apply(x, ctx);
      trace?.(`block${i}_out`, x);
    });
    return this.norm.apply(x);
  }
}
