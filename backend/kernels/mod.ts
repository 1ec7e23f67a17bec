/**
 * strata's kernels for the tfjs wasm backend: the ones tfjs 4.22 lacks
 * (Conv2DBackpropFilter, UnsortedSegmentSum) and faster replacements of stock
 * ones that dominate training: Conv2DBackpropInput and BatchMatMul with
 * transposes or batches (scalar C++ loops in stock; here routed through the
 * backend's XNNPACK paths), Identity and same-dtype Cast (stock copies; the
 * engine clones every tensor saved for the backward pass), Sum and Mean over
 * leading axes (stock transposes first), Slice (stock copies the whole input
 * out of the heap per call).
 *
 * `registerWasmKernels()` installs them (idempotent; `useWasm()` calls it);
 * `unregisterWasmKernels()` restores the stock kernels (benchmarks' "before").
 */
import * as tf from "@tensorflow/tfjs";
// Registers the stock wasm kernels (at import), so they can be remembered below before any override.
import "@tensorflow/tfjs-backend-wasm";
import { batchMatMulConfig } from "./batch_mat_mul.ts";
import { rememberedStock, rememberStock } from "./common.ts";
import { conv2DBackpropFilterConfig } from "./conv2d_backprop_filter.ts";
import { conv2DBackpropInputConfig } from "./conv2d_backprop_input.ts";
import { castConfig, identityConfig } from "./identity.ts";
import { meanConfig, sumConfig } from "./reduce_leading.ts";
import { sliceConfig } from "./slice.ts";
import { unsortedSegmentSumConfig } from "./unsorted_segment_sum.ts";

/** Kernels the stock wasm backend lacks: training needs them. */
export const MISSING_KERNELS: readonly tf.KernelConfig[] = [conv2DBackpropFilterConfig, unsortedSegmentSumConfig];
/** Faster replacements of stock wasm kernels. */
export const FAST_KERNELS: readonly tf.KernelConfig[] = [
  conv2DBackpropInputConfig,
  batchMatMulConfig,
  identityConfig,
  castConfig,
  sumConfig,
  meanConfig,
  sliceConfig,
];

export type KernelSet = "all" | "missing-only";

let installed: KernelSet | "none" = "none";

for (const config of [...MISSING_KERNELS, ...FAST_KERNELS]) rememberStock(config.kernelName);

function install(config: tf.KernelConfig): void {
  const stock = rememberedStock(config.kernelName);
  if (tf.getKernel(config.kernelName, "wasm") !== undefined) tf.unregisterKernel(config.kernelName, "wasm");
  // Keep the stock setup (it binds the C entry points our kernels call through) for later backend initialisations.
  tf.registerKernel({ ...config, setupFunc: stock?.setupFunc });
}

function restore(name: string): void {
  const stock = rememberedStock(name);
  if (tf.getKernel(name, "wasm") !== undefined) tf.unregisterKernel(name, "wasm");
  if (stock !== undefined) tf.registerKernel(stock);
}

/**
 * Registers strata's wasm kernels. `set: "missing-only"` installs only the
 * kernels the stock backend lacks, keeping the stock ones (the benchmarks'
 * baseline: the least that lets wasm train).
 */
export function registerWasmKernels(set: KernelSet = "all"): void {
  if (installed === set) return;
  for (const config of FAST_KERNELS) restore(config.kernelName);
  for (const config of MISSING_KERNELS) install(config);
  if (set === "all") { for (const config of FAST_KERNELS) install(config); }
  installed = set;
}

/** Restores the stock wasm kernels (and removes the ones the stock backend lacks). */
export function unregisterWasmKernels(): void {
  for (const config of [...MISSING_KERNELS, ...FAST_KERNELS]) restore(config.kernelName);
  installed = "none";
}

/** Which of strata's kernel sets is registered for wasm. */
export function wasmKernelSet(): KernelSet | "none" {
  return installed;
}
