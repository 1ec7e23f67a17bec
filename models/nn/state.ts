/**
 * state_dict I/O in PyTorch layout: `stateDict(store)` gives every weight and buffer as a
 * `NamedTensor` (OIHW convs, `[out, in]` linears) under its PyTorch name; `loadStateDict` assigns such
 * a map (e.g. an official checkpoint converted to safetensors, or a fixture's parameters) into the
 * model's tfjs-layout variables. PyTorch's int64 `num_batches_tracked` counters are not kept.
 */
import type { NamedTensor } from "../safetensors.ts";
import { fromTorch, type ParamStore, toTorch } from "./params.ts";

/** Every weight and buffer, PyTorch layout, in definition order. */
export function stateDict(store: ParamStore): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const e of store.entries.values()) {
    const t = toTorch(e.layout, e.variable);
    out.set(e.name, { dtype: "F32", shape: [...e.torchShape], data: t.dataSync() as Float32Array });
    t.dispose();
  }
  return out;
}

export interface LoadOptions {
  /** Every model entry must be present (default true). Unknown names are always errors unless ignored. */
  strict?: boolean;
  /** Name prefixes removed before matching, e.g. `["module.", "vision."]` for wrapped checkpoints. */
  stripPrefixes?: string[];
  /** Names (after stripping) that are skipped silently; `num_batches_tracked` always is. */
  ignore?: (name: string) => boolean;
  /** Where the map came from, for error messages. */
  source?: string;
}

/** Loads a PyTorch-layout state_dict; returns the names that were assigned. */
export function loadStateDict(
  store: ParamStore,
  state: Map<string, NamedTensor>,
  opts: LoadOptions = {},
): string[] {
  const source = opts.source ?? "state_dict";
  const strict = opts.strict ?? true;
  const pending: [string, NamedTensor][] = [];
  const unknown: string[] = [];
  for (const [raw, t] of state) {
    let name = raw;
    for (const p of opts.stripPrefixes ?? []) if (name.startsWith(p)) name = name.slice(p.length);
    if (name.endsWith("num_batches_tracked") || opts.ignore?.(name)) continue;
    const e = store.entries.get(name);
    if (!e) {
      unknown.push(raw);
      continue;
    }
    if (t.shape.join() !== e.torchShape.join()) {
      throw new Error(`${source}: "${raw}" has shape [${t.shape}], the model expects [${e.torchShape}]`);
    }
    if (t.dtype !== "F32") throw new Error(`${source}: "${raw}" is ${t.dtype}, expected F32`);
    pending.push([name, t]);
  }
  if (unknown.length > 0) {
    throw new Error(`${source}: ${unknown.length} names the model does not have: ${unknown.slice(0, 8).join(", ")}`);
  }
  if (strict) {
    const given = new Set(pending.map(([n]) => n));
    const missing = [...store.entries.keys()].filter((n) => !given.has(n));
    if (missing.length > 0) {
      throw new Error(`${source}: missing ${missing.length} entries: ${missing.slice(0, 8).join(", ")}`);
    }
  }
  for (const [name, t] of pending) {
    const e = store.entries.get(name)!;
    const value = fromTorch(e.layout, t.data as Float32Array, e.torchShape);
    e.variable.assign(value);
    value.dispose();
  }
  return pending.map(([n]) => n);
}
