/**
 * Slice for the wasm backend. The stock kernel copies the whole input out of
 * the wasm heap on every call and slices non-contiguous regions with the cpu
 * backend's element-by-element loop (tf.split of a [8192, 384] tensor along
 * its last axis took ~50 ms); here contiguous runs are copied inside the heap.
 */
import * as tf from "@tensorflow/tfjs";
import { type Info, type KernelArgs, sizeOf, stockKernel } from "./common.ts";

export function slice({ inputs, backend, attrs }: KernelArgs): Info {
  const { x } = inputs;
  if (x.dtype !== "float32" && x.dtype !== "int32") return stockKernel(backend, "Slice", inputs, attrs);
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.TensorInfo & { rank: number },
    (attrs as { begin: number | number[] }).begin,
    (attrs as { size?: number | number[] }).size,
  );
  tf.slice_util.assertParamsValid(x as unknown as tf.TensorInfo & { rank: number }, begin, size);
  const out = backend.makeOutput(size, x.dtype);
  if (sizeOf(size) === 0) return out;
  const shape = x.shape;
  const rank = shape.length;
  // Merge trailing axes taken whole into one contiguous run.
  let inner = rank - 1;
  let run = size[inner];
  while (inner > 0 && size[inner] === shape[inner] && begin[inner] === 0) {
    inner--;
    run *= size[inner];
  }
  const strides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  const dst = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const src = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const heap = new Float32Array(dst.buffer);
  const srcBase = src.byteOffset / 4;
  let d = dst.byteOffset / 4;
  // Odometer over the axes before `inner`.
  const index = new Array<number>(inner).fill(0);
  const runs = sizeOf(size.slice(0, inner));
  let offset = srcBase;
  for (let i = 0; i < rank; i++) offset += begin[i] * strides[i];
  for (let r = 0; r < runs; r++) {
    let from = offset;
    for (let i = 0; i < inner; i++) from += index[i] * strides[i];
    heap.copyWithin(d, from, from + run);
    d += run;
    for (let i = inner - 1; i >= 0; i--) {
      if (++index[i] < size[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

export const sliceConfig: tf.KernelConfig = {
  kernelName: "Slice",
  backendName: "wasm",
  kernelFunc: slice as unknown as tf.KernelFunc,
};
