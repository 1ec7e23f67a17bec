/** Shared helpers of the torch kernels: registration and the calls every kernel makes. */
import * as tf from "@tensorflow/tfjs";
import type { TorchBackend } from "../backend.ts";
import { DTYPE_CODE, type Handle } from "../ffi.ts";

// deno-lint-ignore no-explicit-any
export type Attrs = Record<string, any>;
export type Inputs = Record<string, tf.TensorInfo>;

/** Names of every kernel registered for the torch backend (for tests and the closing list). */
export const TORCH_KERNELS: string[] = [];

export function register(
  kernelName: string,
  fn: (b: TorchBackend, inputs: Inputs, attrs: Attrs) => tf.TensorInfo | tf.TensorInfo[],
): void {
  TORCH_KERNELS.push(kernelName);
  tf.registerKernel({
    kernelName,
    backendName: "torch",
    kernelFunc: ({ inputs, attrs, backend }) =>
      fn(backend as unknown as TorchBackend, inputs as unknown as Inputs, (attrs ?? {}) as Attrs),
  });
}

export function dtypeCode(dtype: tf.DataType): number {
  const code = (DTYPE_CODE as Record<string, number>)[dtype];
  if (code === undefined) throw new Error(`torch backend: dtype ${dtype} is not supported`);
  return code;
}

/** Wraps a handle returned by a shim call (null → TorchError) as the kernel output. */
export function out(b: TorchBackend, call: string, h: Deno.PointerValue, shape: number[], dtype: tf.DataType) {
  return b.output(b.shim.check(call, h), shape, dtype);
}

export function h(b: TorchBackend, t: tf.TensorInfo): Handle {
  return b.handle(t);
}

export function i32(values: readonly number[]): Int32Array {
  return Int32Array.from(values);
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
