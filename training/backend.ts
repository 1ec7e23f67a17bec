/**
 * Backend preparation for the train / evaluate / read stages: backend/select.ts (torch-cuda → tensorflow → torch-cpu →
 * wasm → webgpu → cpu, each accepted after a real training step; `force` picks one and fails clearly if it does not work).
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
  /** torch only: device, libtorch version, TF32 settings. */
  torch?: { device: string; libtorch: string; tf32: string };
}

const chosen = new Map<string, Promise<BackendInfo>>();
/** Selections switch tfjs's process-wide backend: one at a time, whatever their `force`. */
let queue: Promise<unknown> = Promise.resolve();

function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

/**
 * Selects (once per `force` value and process) and activates the backend. Concurrent callers with the same
 * `force` share one selection, and selections run one at a time: two racing would initialise backends under
 * each other. (Planning probes in a child process, see backend_fingerprint.ts.)
 */
export async function prepareBackend(force?: string, log?: (line: string) => void): Promise<BackendInfo> {
  const key = force ?? "";
  let pending = chosen.get(key);
  const first = pending === undefined;
  if (pending === undefined) {
    pending = serialized(async () => {
      const r = await selectBackend({ force, log });
      const info: BackendInfo = { name: r.name, tfjsVersion: r.tfjsVersion, details: r.details, torch: r.torch };
      await rememberSelection(force, { backend: info.name, tfjs: info.tfjsVersion, ...r.torch });
      return info;
    });
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
