/**
 * Shared plumbing for strata's wasm kernels: calling the wasm backend's own
 * (stock) kernels directly on TensorInfos, without the engine, and disposing
 * the intermediates.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

export type Info = tf.TensorInfo;
export type Attrs = Record<string, unknown>;
export type KernelArgs = { inputs: Record<string, Info>; backend: BackendWasm; attrs?: Attrs };
export type WasmKernelFunc = (args: KernelArgs) => Info | Info[];

const stock = new Map<string, tf.KernelConfig>();

/** Remembers the stock wasm kernel `name` (call before overriding it). */
export function rememberStock(name: string): tf.KernelConfig | undefined {
  if (!stock.has(name)) {
    const config = tf.getKernel(name, "wasm");
    if (config !== undefined) stock.set(name, config);
  }
  return stock.get(name);
}

/** The stock config remembered for `name` (undefined when the stock backend has none). */
export function rememberedStock(name: string): tf.KernelConfig | undefined {
  return stock.get(name);
}

/** The stock wasm kernel config `name`, or undefined when wasm has none. */
export function stockConfig(name: string): tf.KernelConfig | undefined {
  return stock.get(name) ?? tf.getKernel(name, "wasm");
}

/** Runs the stock wasm kernel `name` directly on the backend (no engine, no tape). */
export function stockKernel(
  backend: BackendWasm,
  name: string,
  inputs: Record<string, Info> | Info[],
  attrs: Attrs = {},
): Info {
  const config = stockConfig(name);
  if (config === undefined) throw new Error(`backend/kernels/common.ts: the wasm backend has no stock kernel ${name}`);
  const out = config.kernelFunc({ inputs, backend, attrs } as unknown as Parameters<tf.KernelFunc>[0]);
  return Array.isArray(out) ? out[0] : out;
}

/** Releases intermediates made by kernel calls. */
export function dispose(backend: BackendWasm, ...infos: Info[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/** A reshaped view of `x` (shares the data; dispose it like any intermediate). */
export function reshape(backend: BackendWasm, x: Info, shape: number[]): Info {
  return stockKernel(backend, "Reshape", { x }, { shape });
}

export function transpose(backend: BackendWasm, x: Info, perm: number[]): Info {
  return stockKernel(backend, "Transpose", { x }, { perm });
}

export function heap(backend: BackendWasm, x: Info): Float32Array {
  return backend.typedArrayFromHeap(x) as Float32Array;
}

export function heapInt(backend: BackendWasm, x: Info): Int32Array {
  return backend.typedArrayFromHeap(x) as Int32Array;
}

export function sizeOf(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
