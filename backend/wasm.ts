/**
 * Loads tfjs's wasm backend from the installed package (no network) and makes
 * it current. Deno runs it single-threaded; it needs read access to the
 * .wasm files.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { fileURLToPath as fromFileUrl } from "node:url";

let pathsSet = false;

export function wasmDirectory(): string {
  return fromFileUrl(new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url));
}

export async function useWasm(): Promise<void> {
  if (!pathsSet) {
    setWasmPaths(wasmDirectory());
    pathsSet = true;
  }
  if (!(await tf.setBackend("wasm"))) {
    throw new Error(`the tfjs wasm backend failed to initialise from ${wasmDirectory()}`);
  }
  await tf.ready();
}
