/**
 * Conv2DBackpropFilter for the wasm backend (missing from tfjs 4.22's wasm
 * kernels), through the stock XNNPACK paths:
 *
 *   dW[kh, kw, ci, co] = Σ_{b, oh, ow} x[b, oh·s + kh − pt, ow·s + kw − pl, ci] · dy[b, oh, ow, co]
 *
 * - stride 1: tap by tap, dW[kh, kw] = xTap [ci, n] · dy [n, co], 2-D fast
 *   matMuls sharing one packing of dy, with the taps copied as whole rows;
 * - stride > 1: one forward convolution with the roles swapped (batch ↔
 *   channels of x, dy as the filter, the stride as the dilation):
 *   conv(xT [ci, h, w, b], dyT [oh, ow, b, co], stride 1, dilation s)[ci, kh, kw, co].
 */
import * as tf from "@tensorflow/tfjs";
import { type Attrs, dispose, type Info, type KernelArgs, stockKernel, transpose } from "./common.ts";
import { gemm, releaseView, tensorId, view } from "./views.ts";

/**
 * Stride 1, im2col over whole padded rows: with xP = x as [ci, b, hp, wp]
 * (zero-padded, plus one spare zero row) and dy widened to [b, oh, wp, co]
 * with zero columns, tap (i, j) of plane (c, b) is the contiguous run
 * xP[c, b].flat[i·wp + j, + oh·wp) — the columns past ow wrap into the next row
 * but meet dy's zero columns. So a tap's rows [ci, b·oh·wp] take one memcpy
 * per (c, b), and dW[tap] = tapRows · dyWide [b·oh·wp, co] is one XNNPACK
 * product per tap, all sharing dy's packing (one product over all taps' rows
 * at once measured the same, with kh·kw× the memory).
 */
export function backpropFilterRows(
  backend: KernelArgs["backend"],
  x: Info,
  dy: Info,
  info: tf.backend_util.Conv2DInfo,
): Info {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const bottom = Math.max(0, filterHeight + outHeight - 1 - inHeight - top);
  const right = Math.max(0, filterWidth + outWidth - 1 - inWidth - left);
  const xT = transpose(backend, x, [3, 0, 1, 2]); // [ci, b, h, w]
  if (filterHeight === 1 && filterWidth === 1 && outHeight === inHeight && outWidth === inWidth) {
    // 1×1 without padding: dW = xT [ci, n] · dy [n, co] directly.
    const n = batchSize * outHeight * outWidth;
    const out = backend.makeOutput([1, 1, inChannels, outChannels], "float32");
    const dyView = view(backend, dy, 0, [n, outChannels]);
    gemm(backend, tensorId(backend, xT), dyView.id, tensorId(backend, out), inChannels, n, outChannels);
    releaseView(backend, dyView);
    dispose(backend, xT);
    return out;
  }
  const xP = stockKernel(backend, "PadV2", { x: xT }, {
    paddings: [[0, 0], [0, 0], [top, bottom + 1], [left, right]],
    constantValue: 0,
  }); // [ci, b, hp + 1, wp]
  dispose(backend, xT);
  const [, , hp1, wp] = xP.shape;
  const run = outHeight * wp;
  const n = batchSize * run;
  const dyWide = wp === outWidth ? dy : stockKernel(backend, "PadV2", { x: dy }, {
    paddings: [[0, 0], [0, 0], [0, wp - outWidth], [0, 0]],
    constantValue: 0,
  }); // [b, oh, wp, co]
  const out = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], "float32");
  // A fresh id for dy as the product's right operand: XNNPACK packs it once (for all taps) and the
  // operator is freed with the view (its cache is keyed by id only, not shape).
  const dyView = view(backend, dyWide, 0, [n, outChannels]);
  const fill = (cols: Info, i: number, j: number, offset: number) => {
    const heap = backend.typedArrayFromHeap(cols) as Float32Array;
    const f32 = new Float32Array(heap.buffer);
    const src = (backend.typedArrayFromHeap(xP) as Float32Array).byteOffset / 4 + i * wp + j;
    const dst = heap.byteOffset / 4 + offset;
    const planes = inChannels * batchSize;
    for (let p = 0; p < planes; p++) f32.copyWithin(dst + p * run, src + p * hp1 * wp, src + p * hp1 * wp + run);
  };
  const tap = backend.makeOutput([inChannels, n], "float32");
  for (let i = 0; i < filterHeight; i++) {
    for (let j = 0; j < filterWidth; j++) {
      fill(tap, i, j, 0);
      const outView = view(backend, out, (i * filterWidth + j) * inChannels * outChannels, [inChannels, outChannels]);
      gemm(backend, tensorId(backend, tap), dyView.id, outView.id, inChannels, n, outChannels);
      releaseView(backend, outView);
    }
  }
  dispose(backend, tap);
  releaseView(backend, dyView);
  if (dyWide !== dy) dispose(backend, dyWide);
  dispose(backend, xP);
  return out;
}

export function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as Attrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat as "NHWC" | "NCHW");
  if (format !== "channelsLast") {
    throw new Error(`backend/kernels/conv2d_backprop_filter.ts: dataFormat ${dataFormat} is not supported (use NHWC)`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides as number | [number, number],
    1,
    pad as "same" | "valid" | number,
    dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    false,
    format,
  );
  // Measured: the matMul route wins at stride 1 (1.3–2.5×); the swapped convolution at stride > 1.
  if (info.strideHeight === 1 && info.strideWidth === 1) return backpropFilterRows(backend, x, dy, info);
  return backpropFilterSwapped(backend, x, dy, info);
}

/** dW as one forward convolution of xT [ci, h, w, b] with dyT [oh, ow, b, co] as the filter, dilation = stride. */
export function backpropFilterSwapped(
  backend: KernelArgs["backend"],
  x: Info,
  dy: Info,
  info: tf.backend_util.Conv2DInfo,
): Info {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Rows/columns of padding after x so the swapped convolution yields at least filter-size outputs.
  const bottom = Math.max(0, filterHeight + (outHeight - 1) * strideHeight - inHeight - top);
  const right = Math.max(0, filterWidth + (outWidth - 1) * strideWidth - inWidth - left);

  const xT = transpose(backend, x, [3, 1, 2, 0]); // [ci, h, w, b]
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [oh, ow, b, co]
  const full = stockKernel(backend, "Conv2D", { x: xT, filter: dyT }, {
    strides: [1, 1],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dataFormat: "NHWC",
    dilations: [strideHeight, strideWidth],
    dimRoundingMode: undefined,
  }); // [ci, ≥kh, ≥kw, co]
  dispose(backend, xT, dyT);
  let cropped = full;
  if (full.shape[1] !== filterHeight || full.shape[2] !== filterWidth) {
    cropped = stockKernel(backend, "Slice", { x: full }, {
      begin: [0, 0, 0, 0],
      size: [full.shape[0], filterHeight, filterWidth, full.shape[3]],
    });
    dispose(backend, full);
  }
  const out = transpose(backend, cropped, [1, 2, 0, 3]); // [kh, kw, ci, co]
  dispose(backend, cropped);
  return out;
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: "Conv2DBackpropFilter",
  backendName: "wasm",
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
