/**
 * Zero-copy Identity and same-dtype Cast for the wasm backend. The stock
 * kernels copy the data, and tfjs's engine clones (Identity) every tensor it
 * saves for the backward pass, so a training step copied most of its
 * activations once more. tfjs tensors are immutable, so sharing the data (with
 * a reference count, as the cpu backend does) is safe.
 */
import * as tf from "@tensorflow/tfjs";
import { type Attrs, type Info, type KernelArgs, stockKernel } from "./common.ts";

export function identity({ inputs, backend }: KernelArgs): Info {
  const { x } = inputs;
  if (x.dtype === "string") return stockKernel(backend, "Identity", inputs);
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function cast(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { x } = inputs;
  if ((attrs as Attrs).dtype === x.dtype && x.dtype !== "string") return identity({ inputs, backend });
  return stockKernel(backend, "Cast", inputs, attrs);
}

export const identityConfig: tf.KernelConfig = {
  kernelName: "Identity",
  backendName: "wasm",
  kernelFunc: identity as unknown as tf.KernelFunc,
};

export const castConfig: tf.KernelConfig = {
  kernelName: "Cast",
  backendName: "wasm",
  kernelFunc: cast as unknown as tf.KernelFunc,
};
