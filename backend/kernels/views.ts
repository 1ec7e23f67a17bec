/**
 * Zero-copy views into wasm tensors, for calling the backend's C entry points
 * on sub-blocks of a tensor (e.g. one batch of a batched matMul). A view is
 * registered with the C++ side only (never with the engine or the dataIdMap)
 * and must be released with `releaseView`, which also drops any XNNPACK
 * operator the C++ side cached for it; the memory stays owned by the base
 * tensor.
 */
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, sizeOf } from "./common.ts";

type TensorData = { id: number; memoryOffset: number };
type WasmModule = {
  tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
};

export type View = { id: number; shape: number[] };

function internals(backend: BackendWasm): { wasm: WasmModule; nextId: () => number } {
  const b = backend as unknown as { wasm: WasmModule; dataIdNextNumber: number };
  return { wasm: b.wasm, nextId: () => b.dataIdNextNumber++ };
}

/** The C++ id of a backend tensor. */
export function tensorId(backend: BackendWasm, x: Info): number {
  return (backend.dataIdMap.get(x.dataId) as unknown as TensorData).id;
}

/** A view of `shape` starting `offset` float32 elements into `base`. */
export function view(backend: BackendWasm, base: Info, offset: number, shape: number[]): View {
  const { wasm, nextId } = internals(backend);
  const data = backend.dataIdMap.get(base.dataId) as unknown as TensorData;
  const id = nextId();
  wasm.tfjs.registerTensor(id, sizeOf(shape), data.memoryOffset + offset * 4);
  return { id, shape };
}

export function releaseView(backend: BackendWasm, v: View): void {
  internals(backend).wasm.tfjs.disposeData(v.id);
}

type MatMulFn = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

const matMulFns = new WeakMap<object, MatMulFn>();

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/**
 * The wasm backend's BatchMatMul C entry point on C++ tensor ids: with no
 * transposes and batch 1 it runs XNNPACK's fully-connected operator (cached on
 * b's id, so a b shared by several calls is packed once).
 * a: [1, m, k], b: [1, k, n], out: [1, m, n].
 */
export function gemm(
  backend: BackendWasm,
  aId: number,
  bId: number,
  outId: number,
  m: number,
  k: number,
  n: number,
): void {
  const { wasm } = internals(backend);
  let fn = matMulFns.get(wasm);
  if (fn === undefined) {
    fn = wasm.cwrap("BatchMatMul", null, [
      "number",
      "array",
      "number",
      "number",
      "array",
      "number",
      "number",
      "number",
      "number",
    ]) as unknown as MatMulFn;
    matMulFns.set(wasm, fn);
  }
  fn(aId, shapeBytes([1, m, k]), 3, bId, shapeBytes([1, k, n]), 3, false, false, outId);
}
