/**
 * Loads tfjs's wasm backend from the installed package (no network) and makes
 * it current, with strata's extra wasm kernels registered (backend/kernels/).
 * Deno runs it single-threaded; it needs read access to the .wasm files.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { fileURLToPath as fromFileUrl } from "node:url";
import { type KernelSet, registerWasmKernels, unregisterWasmKernels } from "./kernels/mod.ts";

export { registerWasmKernels, unregisterWasmKernels, wasmKernelSet } from "./kernels/mod.ts";

let pathsSet = false;

export function wasmDirectory(): string {
  return fromFileUrl(new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url));
}

export type UseWasmOptions = {
  /** strata's kernels: "all" (default), "missing-only" (only those the stock backend lacks), "none" (stock). */
  kernels?: KernelSet | "none";
};

export async function useWasm(options: UseWasmOptions = {}): Promise<void> {
  if (!pathsSet) {
    setWasmPaths(wasmDirectory());
    pathsSet = true;
  }
  if (!(await tf.setBackend("wasm"))) {
    throw new Error(`backend/wasm.ts: the tfjs wasm backend failed to initialise from ${wasmDirectory()}`);
  }
  await tf.ready();
  const kernels = options.kernels ?? "all";
  if (kernels === "none") unregisterWasmKernels();
  else registerWasmKernels(kernels);
}
