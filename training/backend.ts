/**
 * Backend preparation for the train / evaluate / read stages: backend/select.ts (tensorflow → webgpu → wasm →
 * cpu, each accepted after a real training step; `force` picks one and fails clearly if it does not work).
 * The result is memoised per `force` for the process, so `environment()` and `run()` agree and stay cheap.
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../backend/select.ts";
import { rememberSelection } from "./backend_fingerprint.ts";

export interface BackendInfo {
  name: string;
  tfjsVersion: string;
  /** What was chosen and why earlier candidates were not. */
  details: string;
}

const chosen = new Map<string, Promise<BackendInfo>>();

/**
 * Selects (once per `force` value and process) and activates the backend. Concurrent callers (the engine asks
 * every train/evaluate stage for its environment at once) share one selection: two selections racing would
 * initialise backends under each other.
 */
export async function prepareBackend(force?: string, log?: (line: string) => void): Promise<BackendInfo> {
  const key = force ?? "";
  let pending = chosen.get(key);
  const first = pending === undefined;
  if (pending === undefined) {
    pending = (async () => {
      const r = await selectBackend({ force, log });
      const info = { name: r.name, tfjsVersion: r.tfjsVersion, details: r.details };
      await rememberSelection(force, { backend: info.name, tfjs: info.tfjsVersion });
      return info;
    })();
    chosen.set(key, pending);
    // A failed selection is not remembered: the next caller tries again.
    pending.catch(() => chosen.delete(key));
  }
  const known = await pending;
  if (!first && tf.getBackend() !== known.name && !(await tf.setBackend(known.name))) {
    throw new Error(`the tfjs backend "${known.name}" failed to re-initialise`);
  }
  return known;
}
