/**
 * Backend preparation for the train / evaluate / read stages. Delegates to backend/select.ts (the backend
 * engineer's selection: tensorflow → webgpu → wasm → cpu, each accepted after a real training step) once it
 * exists; until then a local fallback: the forced backend, else wasm when it can train (Conv2DBackpropFilter
 * registered), else cpu.
 */
import * as tf from "@tensorflow/tfjs";
import { useWasm } from "../backend/wasm.ts";

export interface BackendInfo {
  name: string;
  tfjsVersion: string;
}

const selectModule = "../backend/select.ts";

export async function prepareBackend(force?: string): Promise<BackendInfo> {
  // A non-literal specifier, so that type checking does not require the module before it lands.
  const select = await import(selectModule).catch(() => undefined) as
    | { selectBackend(opts: { force?: string }): Promise<{ name: string; tfjsVersion: string }> }
    | undefined;
  if (select?.selectBackend) {
    const r = await select.selectBackend({ force });
    return { name: r.name, tfjsVersion: r.tfjsVersion };
  }
  const want = force ?? (await wasmCanTrain() ? "wasm" : "cpu");
  if (want === "wasm") await useWasm();
  else if (!(await tf.setBackend(want))) throw new Error(`the tfjs backend "${want}" failed to initialise`);
  await tf.ready();
  return { name: tf.getBackend(), tfjsVersion: tf.version.tfjs };
}

async function wasmCanTrain(): Promise<boolean> {
  try {
    await useWasm();
    return tf.getKernel("Conv2DBackpropFilter", "wasm") !== undefined;
  } catch {
    return false;
  }
}
