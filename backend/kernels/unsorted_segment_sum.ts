/**
 * UnsortedSegmentSum for the wasm backend (missing from tfjs 4.22's wasm
 * kernels; needed by the gradient of tf.gather): out[segmentIds[i], ...] +=
 * x[i, ...], ids outside [0, numSegments) are dropped (as TensorFlow does).
 */
import * as tf from "@tensorflow/tfjs";
import { type Attrs, heap, heapInt, type Info, type KernelArgs, sizeOf } from "./common.ts";

export function unsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, segmentIds } = inputs;
  const numSegments = (attrs as Attrs).numSegments as number;
  if (x.dtype !== "float32" && x.dtype !== "int32") {
    throw new Error(`backend/kernels/unsorted_segment_sum.ts: dtype ${x.dtype} is not supported`);
  }
  const idRank = segmentIds.shape.length;
  for (let i = 0; i < idRank; i++) {
    if (segmentIds.shape[i] !== x.shape[i]) {
      throw new Error(
        `backend/kernels/unsorted_segment_sum.ts: segmentIds shape [${segmentIds.shape}] is not a prefix of x shape [${x.shape}]`,
      );
    }
  }
  const inner = x.shape.slice(idRank);
  const outShape = [numSegments, ...inner];
  const out = backend.makeOutput(outShape, x.dtype);
  const rowSize = sizeOf(inner);
  const rows = sizeOf(segmentIds.shape);
  // Views after the allocation (a heap growth detaches older views).
  const ids = segmentIds.dtype === "int32" ? heapInt(backend, segmentIds) : Int32Array.from(heap(backend, segmentIds));
  const src = x.dtype === "float32" ? heap(backend, x) : heapInt(backend, x);
  const dst = x.dtype === "float32" ? heap(backend, out) : heapInt(backend, out);
  dst.fill(0);
  for (let r = 0; r < rows; r++) {
    const s = ids[r];
    if (s < 0 || s >= numSegments) continue;
    const so = r * rowSize;
    const d = s * rowSize;
    for (let j = 0; j < rowSize; j++) dst[d + j] += src[so + j];
  }
  return out;
}

export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: "UnsortedSegmentSum",
  backendName: "wasm",
  kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc,
};
