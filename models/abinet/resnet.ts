/**
 * ABINet's ResNet45 backbone (independent implementation from the architecture description):
 *
 * - stem: `conv1` 3×3 stride 1 pad 1, no bias (channels → stem width) → `bn1` → ReLU;
 * - stages `layer1…layerN`, each `blocks` BasicBlocks of `channels` width, the first with the stage's
 *   stride (and a `downsample` 1×1 conv + BN when the stride or width changes);
 * - BasicBlock: `conv1` 1×1 → `bn1` → ReLU → `conv2` 3×3 (stride, pad 1) → `bn2` → + residual → ReLU.
 *
 * Official config: stem 32; stages (3, 32, s2), (4, 64, s1), (6, 128, s2), (6, 256, s1), (3, 512, s1):
 * a 32×128 image becomes an 8×32×512 map. NHWC in and out.
 */
import * as tf from "@tensorflow/tfjs";
import { BatchNorm2d, Conv2d, type ForwardContext } from "../nn/layers.ts";
import { kaimingNormalFanOut, type Scope } from "../nn/params.ts";

export class BasicBlock {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample?: { conv: Conv2d; bn: BatchNorm2d };

  constructor(scope: Scope, inPlanes: number, planes: number, stride: number) {
    const conv = (name: string, inC: number, k: number, s: number) =>
      new Conv2d(scope.child(name), {
        inChannels: inC,
        outChannels: planes,
        kernel: k,
        stride: s,
        padding: k === 3 ? 1 : 0,
        bias: false,
        weightInit: kaimingNormalFanOut,
      });
    this.conv1 = conv("conv1", inPlanes, 1, 1);
    this.bn1 = new BatchNorm2d(scope.child("bn1"), planes);
    this.conv2 = conv("conv2", planes, 3, stride);
    this.bn2 = new BatchNorm2d(scope.child("bn2"), planes);
    if (stride !== 1 || inPlanes !== planes) {
      const ds = scope.child("downsample");
      this.downsample = {
        conv: new Conv2d(ds.child(0), {
          inChannels: inPlanes,
          outChannels: planes,
          kernel: 1,
          stride,
          bias: false,
          weightInit: kaimingNormalFanOut,
        }),
        bn: new BatchNorm2d(ds.child(1), planes),
      };
    }
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    let out = tf.relu(this.bn1.apply(this.conv1.apply(x), ctx));
    out = this.bn2.apply(this.conv2.apply(out), ctx);
    const residual = this.downsample ? this.downsample.bn.apply(this.downsample.conv.apply(x), ctx) : x;
    return tf.relu(tf.add(out, residual));
  }
}

export interface ResNetConfig {
  inChannels: number;
  stemChannels: number;
  /** Per stage: width, number of blocks, stride of the first block. */
  stages: { channels: number; blocks: number; stride: number }[];
}

export const RESNET45: ResNetConfig = {
  inChannels: 3,
  stemChannels: 32,
  stages: [
    { channels: 32, blocks: 3, stride: 2 },
    { channels: 64, blocks: 4, stride: 1 },
    { channels: 128, blocks: 6, stride: 2 },
    { channels: 256, blocks: 6, stride: 1 },
    { channels: 512, blocks: 3, stride: 1 },
  ],
};

export class ResNet {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layers: BasicBlock[][];
  readonly outChannels: number;
  /** Total downsampling factor (product of the stage strides). */
  readonly reduction: number;

  constructor(scope: Scope, readonly config: ResNetConfig) {
    this.conv1 = new Conv2d(scope.child("conv1"), {
      inChannels: config.inChannels,
      outChannels: config.stemChannels,
      kernel: 3,
      padding: 1,
      bias: false,
      weightInit: kaimingNormalFanOut,
    });
    this.bn1 = new BatchNorm2d(scope.child("bn1"), config.stemChannels);
    let inPlanes = config.stemChannels;
    this.layers = config.stages.map((stage, i) => {
      const layer = scope.child(`layer${i + 1}`);
      const blocks: BasicBlock[] = [];
      for (let j = 0; j < stage.blocks; j++) {
        blocks.push(new BasicBlock(layer.child(j), inPlanes, stage.channels, j === 0 ? stage.stride : 1));
        inPlanes = stage.channels;
      }
      return blocks;
    });
    this.outChannels = inPlanes;
    this.reduction = config.stages.reduce((a, s) => a * s.stride, 1);
  }

  /** `[B, H, W, C]` → `[B, H/r, W/r, outChannels]`; `taps` receives each stage's output (debug). */
  apply(x: tf.Tensor4D, ctx: ForwardContext, taps?: tf.Tensor4D[]): tf.Tensor4D {
    // One tidy per block bounds the peak memory of eval forwards (a full-config batch of 32 otherwise
    // exceeds the wasm heap); in train mode the gradient tape keeps what it needs.
    let y = tf.tidy(() => tf.relu(this.bn1.apply(this.conv1.apply(x), ctx)));
    for (const blocks of this.layers) {
      for (const block of blocks) {
        const input = y;
        y = tf.tidy(() => block.apply(input, ctx));
      }
      taps?.push(y);
    }
    return y;
  }
}
