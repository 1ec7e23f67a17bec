/**
 * Conv2DBackpropInput for the wasm backend through the stock XNNPACK forward
 * convolution (the stock wasm kernel is a scalar loop at ~2 GFLOP/s):
 * - stride 1: dx = conv(dy, W rotated 180° with in/out channels swapped);
 * - stride > 1: sub-pixel decomposition, one such convolution per phase of dx
 *   with the taps of W that reach it, interleaved into dx.
 */
import * as tf from "@tensorflow/tfjs";
import { type Attrs, dispose, type Info, type KernelArgs, stockKernel, transpose } from "./common.ts";

/** W [kh, kw, ci, co] → W' [kh, kw, co, ci] with W'[i, j] = W[kh − 1 − i, kw − 1 − j]. */
export function flipFilter(backend: KernelArgs["backend"], filter: Info): Info {
  const flipped = stockKernel(backend, "Reverse", { x: filter }, { dims: [0, 1] });
  const out = transpose(backend, flipped, [0, 1, 3, 2]);
  dispose(backend, flipped);
  return out;
}

/** The filter taps W[ry::sh, rx::sw] of W [kh, kw, ci, co] (a small copy in JS). */
function subFilter(backend: KernelArgs["backend"], filter: Info, ry: number, rx: number, sh: number, sw: number): Info {
  const [kh, kw, ci, co] = filter.shape;
  const th = Math.ceil((kh - ry) / sh);
  const tw = Math.ceil((kw - rx) / sw);
  const out = backend.makeOutput([th, tw, ci, co], "float32");
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const src = backend.typedArrayFromHeap(filter) as Float32Array;
  const block = ci * co;
  for (let t = 0; t < th; t++) {
    for (let u = 0; u < tw; u++) {
      const from = ((ry + t * sh) * kw + rx + u * sw) * block;
      dst.set(src.subarray(from, from + block), (t * tw + u) * block);
    }
  }
  return out;
}

/**
 * Stride > 1 by sub-pixel decomposition: the rows y with (y + pt) ≡ ry (mod sh)
 * (and likewise columns) only meet the taps kh ≡ ry, so each of the sh·sw phases
 * of dx is a stride-1 "full" convolution of dy with the sub-filter W[ry::sh,
 * rx::sw]; the phases are then interleaved into dx. No multiplications by the
 * zeros a dilated dy would have.
 */
function backpropInputSubPixel(
  backend: KernelArgs["backend"],
  dy: Info,
  filter: Info,
  info: tf.backend_util.Conv2DInfo,
): Info {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight: sh, strideWidth: sw } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const dx = backend.makeOutput([batchSize, inHeight, inWidth, inChannels], "float32");
  (backend.typedArrayFromHeap(dx) as Float32Array).fill(0);
  for (let ry = 0; ry < sh; ry++) {
    for (let rx = 0; rx < sw; rx++) {
      // Rows y = sh·Q + ry − pt inside [0, inHeight): Q in [q0, q1]; likewise columns.
      const q0 = Math.max(0, Math.ceil((pt - ry) / sh));
      const q1 = Math.floor((inHeight - 1 + pt - ry) / sh);
      const r0 = Math.max(0, Math.ceil((pl - rx) / sw));
      const r1 = Math.floor((inWidth - 1 + pl - rx) / sw);
      if (ry >= kh || rx >= kw || q1 < q0 || r1 < r0) continue;
      const sub = subFilter(backend, filter, ry, rx, sh, sw);
      const [th, tw] = sub.shape;
      const w = flipFilter(backend, sub);
      dispose(backend, sub);
      // Full correlation: output row u is Q = u + q0 with top padding th − 1 − q0 (negative: crop).
      const top = th - 1 - q0;
      const left = tw - 1 - r0;
      const rows = q1 - q0 + 1;
      const cols = r1 - r0 + 1;
      const padTop = Math.max(0, top);
      const padLeft = Math.max(0, left);
      const padBottom = Math.max(0, rows + (padTop - top) + th - 1 - outHeight - padTop);
      const padRight = Math.max(0, cols + (padLeft - left) + tw - 1 - outWidth - padLeft);
      const z = stockKernel(backend, "Conv2D", { x: dy, filter: w }, {
        strides: [1, 1],
        pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]],
        dataFormat: "NHWC",
        dilations: [1, 1],
        dimRoundingMode: undefined,
      }); // row u ↔ Q = u + q0 − (padTop − top)
      dispose(backend, w);
      const [, zh, zw] = z.shape;
      const u0 = padTop - top;
      const v0 = padLeft - left;
      const zHeap = backend.typedArrayFromHeap(z) as Float32Array;
      const dHeap = backend.typedArrayFromHeap(dx) as Float32Array;
      const heap = new Float32Array(dHeap.buffer);
      const zBase = zHeap.byteOffset / 4;
      const dBase = dHeap.byteOffset / 4;
      const c = inChannels;
      for (let b = 0; b < batchSize; b++) {
        for (let q = 0; q < rows; q++) {
          const y = sh * (q + q0) + ry - pt;
          let from = zBase + ((b * zh + q + u0) * zw + v0) * c;
          let to = dBase + ((b * inHeight + y) * inWidth + sw * r0 + rx - pl) * c;
          for (let r = 0; r < cols; r++) {
            heap.copyWithin(to, from, from + c);
            from += c;
            to += sw * c;
          }
        }
      }
      dispose(backend, z);
    }
  }
  return dx;
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
  if (sh > 1 || sw > 1) return backpropInputSubPixel(backend, dy, filter, info);
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const bottom = inHeight + kh - 1 - dy.shape[1] - top;
  const right = inWidth + kw - 1 - dy.shape[2] - left;
  const w = flipFilter(backend, filter);
  const full = stockKernel(backend, "Conv2D", { x: dy, filter: w }, {
    strides: [1, 1],
    pad: [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]],
    dataFormat: "NHWC",
    dilations: [1, 1],
    dimRoundingMode: undefined,
  });
  dispose(backend, w);
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
