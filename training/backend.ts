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

const chosen = new Map<string, BackendInfo>();

export async function prepareBackend(force?: string, log?: (line: string) => void): Promise<BackendInfo> {
  const key = force ?? "";
  const known = chosen.get(key);
  if (known) {
    if (tf.getBackend() !== known.name && !(await tf.setBackend(known.name))) {
      throw new Error(`the tfjs backend "${known.name}" failed to re-initialise`);
    }
    return known;
  }
  const r = await selectBackend({ force, log });
  const info = { name: r.name, tfjsVersion: r.tfjsVersion, details: r.details };
  chosen.set(key, info);
  await rememberSelection(force, { backend: info.name, tfjs: info.tfjsVersion });
  return info;
}
