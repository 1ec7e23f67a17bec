/**
 * Per-family maps from official state dicts to strata's model state (`Recognizer.state()`: PyTorch names and
 * layouts). A family registers one `KeyMap` (see `maps/`); `mapState` applies it and reports every missing,
 * unexpected and mis-shaped key at once.
 *
 * Applying a map, per official key: wrapper prefixes shared by every key are removed first (DataParallel
 * `module.`, Lightning `model.`, and the family's own `wrappers`), then `ignore` drops keys strata keeps no
 * state for (BatchNorm `num_batches_tracked` always), `rename` gives the strata name, and `convert` may
 * rewrite the whole map (e.g. split or pack tensors whose layout differs).
 */
import type { NamedTensor } from "../models/safetensors.ts";
import type { OfficialState, SourceTensor } from "./state_dict.ts";

/** Preprocessing the official model expects (stored in the strata checkpoint; see training/checkpoint.ts). */
export interface OfficialDataConfig {
  height: number;
  width: number;
  channels: number;
  normalize: "imagenet" | "unit";
  protocol: 36 | 62 | 94;
  max_length: number;
}

export interface KeyMapContext {
  /** Tensors after wrapper stripping / ignore / rename (strata names). */
  tensors: Map<string, NamedTensor>;
  hyperParameters?: Record<string, unknown>;
}

export interface KeyMap {
  family: string;
  /** The official code the names come from, for messages and docs. */
  source: string;
  /** Extra wrapper prefixes removed when every key has them (`module.` and `model.` always are). */
  wrappers?: string[];
  /** Prefixes removed wherever they appear at the start of a key (e.g. `vision.` of a composite model). */
  stripPrefixes?: string[];
  /** Official keys with no strata counterpart, dropped silently. */
  ignore?(name: string): boolean;
  /** Official name → strata name (identity when absent). */
  rename?(name: string): string;
  /** Whole-map layout conversion after renaming (identity when absent). */
  convert?(tensors: Map<string, NamedTensor>): Map<string, NamedTensor>;
  /** The family config (architecture) that fits the checkpoint, from its tensors / hyper parameters. */
  config?(ctx: KeyMapContext): Record<string, unknown>;
  /** Preprocessing of the official model. */
  data: OfficialDataConfig;
}

const maps = new Map<string, KeyMap>();

export function registerKeyMap(map: KeyMap): KeyMap {
  if (maps.has(map.family)) {
    throw new Error(`checkpoints/key_maps.ts: a key map for "${map.family}" is registered twice`);
  }
  maps.set(map.family, map);
  return map;
}

export function getKeyMap(family: string): KeyMap {
  const m = maps.get(family);
  if (!m) {
    throw new Error(
      `no PyTorch key map for model family "${family}"; families with one: ${[...maps.keys()].sort().join(", ")}`,
    );
  }
  return m;
}

export function keyMapFamilies(): string[] {
  return [...maps.keys()].sort();
}

const ALWAYS_WRAPPERS = ["module.", "model."];

/** Removes prefixes that every key carries (repeatedly: `module.model.` too). */
export function stripWrappers(names: string[], wrappers: string[]): { prefix: string; names: string[] } {
  let prefix = "";
  let current = names;
  for (;;) {
    const w = wrappers.find((p) => current.length > 0 && current.every((n) => n.startsWith(p)));
    if (!w) return { prefix, names: current };
    prefix += w;
    current = current.map((n) => n.slice(w.length));
  }
}

export class KeyMismatchError extends Error {
  constructor(
    readonly source: string,
    readonly family: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly misshaped: string[],
  ) {
    // One line: the engine's summary shows an error's first line.
    const parts: string[] = [];
    if (missing.length) parts.push(`${missing.length} missing: ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`${unexpected.length} unexpected: ${unexpected.join(", ")}`);
    if (misshaped.length) parts.push(`${misshaped.length} mis-shaped: ${misshaped.join(", ")}`);
    super(`${source} does not fit model family "${family}": ${parts.join("; ")}`);
    this.name = "KeyMismatchError";
  }
}

export interface MappedState {
  /** strata names → PyTorch-layout tensors, ready for `Recognizer.loadState`. */
  state: Map<string, NamedTensor>;
  /** The wrapper prefix removed ("" when none). */
  strippedPrefix: string;
  /** Official keys dropped by the map (e.g. `num_batches_tracked`). */
  ignored: string[];
  /** Source dtypes seen (e.g. {float16: 398}). */
  dtypes: Record<string, number>;
  /** strata name → official key, for messages. */
  origin: Map<string, string>;
  /** Official keys that landed on a name another key already had. */
  duplicates: string[];
}

/** Unwraps, filters, renames and converts an official state dict (no checks yet: see `checkFit`). */
export function mapState(map: KeyMap, official: OfficialState): MappedState {
  const raw = [...official.tensors.keys()];
  const { prefix, names } = stripWrappers(raw, [...ALWAYS_WRAPPERS, ...(map.wrappers ?? [])]);
  const ignored: string[] = [];
  const dtypes: Record<string, number> = {};
  let state = new Map<string, NamedTensor>();
  const origin = new Map<string, string>();
  const duplicates: string[] = [];
  names.forEach((stripped, i) => {
    let name = stripped;
    for (const p of map.stripPrefixes ?? []) if (name.startsWith(p)) name = name.slice(p.length);
    const src = official.tensors.get(raw[i]) as SourceTensor;
    if (name.endsWith("num_batches_tracked") || map.ignore?.(name)) {
      ignored.push(raw[i]);
      return;
    }
    const target = map.rename ? map.rename(name) : name;
    if (state.has(target)) duplicates.push(`${raw[i]} (→ ${target}, also from ${origin.get(target)})`);
    state.set(target, src.tensor);
    origin.set(target, raw[i]);
    dtypes[src.dtype] = (dtypes[src.dtype] ?? 0) + 1;
  });
  if (map.convert) state = map.convert(state);
  return { state, strippedPrefix: prefix, ignored, dtypes, origin, duplicates };
}

/** Throws `KeyMismatchError` (every missing, unexpected and mis-shaped key) unless `mapped` fits `expected`. */
export function checkFit(
  family: string,
  source: string,
  mapped: MappedState,
  expected: Map<string, readonly number[]>,
): void {
  const { state, origin } = mapped;
  const missing = [...expected.keys()].filter((n) => !state.has(n));
  const unexpected = [...state.keys()].filter((n) => !expected.has(n)).map((n) =>
    origin.get(n) && origin.get(n) !== n ? `${origin.get(n)} (as ${n})` : n
  );
  unexpected.push(...mapped.duplicates.map((d) => `duplicate ${d}`));
  const misshaped: string[] = [];
  for (const [name, t] of state) {
    const want = expected.get(name);
    if (!want) continue;
    if (t.shape.join() !== want.join()) misshaped.push(`${name} is [${t.shape}], the model needs [${want}]`);
    else if (t.dtype !== "F32") misshaped.push(`${name} is ${t.dtype}, the model needs floating point`);
  }
  if (missing.length || unexpected.length || misshaped.length) {
    throw new KeyMismatchError(source, family, missing, unexpected, misshaped);
  }
}
