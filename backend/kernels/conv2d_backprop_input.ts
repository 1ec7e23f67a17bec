/**
 * Conv2DBackpropInput for the wasm backend through the stock XNNPACK forward
 * convolution: dx = conv(dy dilated by the stride, W rotated 180° with its
 * in/out channels swapped), stride 1. (The stock wasm kernel is a scalar loop
 * at ~2 GFLOP/s.)
 */
import * as tf from "@tensorflow/tfjs";
import { type Attrs, dispose, type Info, type KernelArgs, reshape, stockKernel, transpose } from "./common.ts";

/** W [kh, kw, ci, co] → W' [kh, kw, co, ci] with W'[i, j] = W[kh − 1 − i, kw − 1 − j]. */
export function flipFilter(backend: KernelArgs["backend"], filter: Info): Info {
  const flipped = stockKernel(backend, "Reverse", { x: filter }, { dims: [0, 1] });
  const out = transpose(backend, flipped, [0, 1, 3, 2]);
  dispose(backend, flipped);
  return out;
}

/** dy [b, oh, ow, c] → [b, oh·sh, ow·sw, c] with dy at multiples of the stride and zeros between. */
export function dilate(backend: KernelArgs["backend"], dy: Info, sh: number, sw: number): Info {
  const [b, oh, ow, c] = dy.shape;
  const six = reshape(backend, dy, [b, oh, 1, ow, 1, c]);
  const padded = stockKernel(backend, "PadV2", { x: six }, {
    paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
    constantValue: 0,
  });
  dispose(backend, six);
  const out = reshape(backend, padded, [b, oh * sh, ow * sw, c]);
  dispose(backend, padded);
  return out;
}

export function conv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): Info {
  const { dy, filter } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as Attrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat as "NHWC" | "NCHW");
  if (format !== "channelsLast") {
    throw new Error(`backend/kernels/conv2d_backprop_input.ts: dataFormat ${dataFormat} is not supported (use NHWC)`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides as number | [number, number],
    1,
    pad as "same" | "valid" | number,
    dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    false,
    format,
  );
  const { inHeight, inWidth, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const src = sh === 1 && sw === 1 ? dy : dilate(backend, dy, sh, sw);
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const bottom = inHeight + kh - 1 - src.shape[1] - top;
  const right = inWidth + kw - 1 - src.shape[2] - left;
  const w = flipFilter(backend, filter);
  const full = stockKernel(backend, "Conv2D", { x: src, filter: w }, {
    strides: [1, 1],
    pad: [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]],
    dataFormat: "NHWC",
    dilations: [1, 1],
    dimRoundingMode: undefined,
  });
  dispose(backend, w);
  if (src !== dy) dispose(backend, src);
  if (bottom >= 0 && right >= 0) return full;
  const out = stockKernel(backend, "Slice", { x: full }, { begin: [0, 0, 0, 0], size: info.inShape });
  dispose(backend, full);
  return out;
}

export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: "Conv2DBackpropInput",
  backendName: "wasm",
  kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc,
};
