/**
 * Official PyTorch checkpoints → strata models and checkpoints.
 *
 * `loadOfficial(path, family)` reads a `.pth` / `.pt` / Lightning `.ckpt` / safetensors file (see
 * `state_dict.ts`), maps its names with the family's key map (`key_maps.ts`, `maps/`), builds the family with the
 * config the tensors imply, checks the fit (every missing, unexpected and mis-shaped key in one error) and loads
 * the weights. `importOfficial` writes the result as a strata checkpoint (PyTorch layout, safetensors), which
 * evaluate, read and train (`init_from`) take like a trained model.
 */
import { charsetFor, type Protocol } from "../data/charset.ts";
import type { Recognizer } from "../models/recognizer.ts";
import { CHECKPOINT_FORMAT, type CheckpointMeta, saveCheckpoint } from "../training/checkpoint.ts";
import { checkFit, getKeyMap, type KeyMap, mapState, type OfficialDataConfig, stripWrappers } from "./key_maps.ts";
import "./maps/mod.ts";
import { type OfficialState, readOfficialState, type SourceTensor } from "./state_dict.ts";

export { keyMapFamilies, KeyMismatchError, registerKeyMap } from "./key_maps.ts";
export { PickleError } from "./pickle.ts";
export { CheckpointFormatError } from "./torch_file.ts";

export interface LoadOfficialOptions {
  /** Config fields that override what the key map infers (validated by the family's schema). */
  config?: Record<string, unknown>;
  /** Preprocessing fields that override the key map's (e.g. another charset protocol). */
  data?: Partial<OfficialDataConfig>;
  /**
   * Use only the keys under this prefix (after unwrapping `module.` / `model.`), e.g. `vision.` to evaluate the
   * vision model of a full ABINet checkpoint (ABINet's `--model_eval vision`); the other keys are counted as
   * ignored, and a prefix that matches no key is an error.
   */
  select?: string;
}

/** Keeps the keys under `prefix` (wrappers removed first), without the prefix. */
export function selectSubtree(official: OfficialState, prefix: string): OfficialState {
  const { prefix: wrapper } = stripWrappers([...official.tensors.keys()], ["module.", "model."]);
  const tensors = new Map<string, SourceTensor>();
  for (const [k, t] of official.tensors) {
    const name = k.slice(wrapper.length);
    if (name.startsWith(prefix)) tensors.set(name.slice(prefix.length), t);
  }
  if (tensors.size === 0) {
    const tops = [...new Set([...official.tensors.keys()].map((k) => k.slice(wrapper.length).split(".")[0] + "."))];
    throw new Error(`${official.source}: no key starts with "${prefix}"; top-level prefixes: ${tops.join(", ")}`);
  }
  return {
    ...official,
    tensors,
    selected: { prefix, kept: tensors.size, dropped: official.tensors.size - tensors.size },
  };
}

export interface LoadedOfficial {
  model: Recognizer;
  meta: CheckpointMeta;
  official: OfficialState;
}

/** Is `path` a strata checkpoint (safetensors with strata metadata) rather than an official file? */
export async function isStrataCheckpoint(path: string): Promise<boolean> {
  const f = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(8);
    if ((await f.read(head)) !== 8) return false;
    const n = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (n <= 0 || n > 100_000_000) return false;
    const json = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = await f.read(json.subarray(got));
      if (r === null) return false;
      got += r;
    }
    const header = JSON.parse(new TextDecoder().decode(json));
    return header?.__metadata__?.format === CHECKPOINT_FORMAT;
  } catch {
    return false;
  } finally {
    f.close();
  }
}

export async function loadOfficial(
  path: string,
  familyName: string,
  opts: LoadOfficialOptions = {},
): Promise<LoadedOfficial> {
  const { loadModelFamilies } = await import("../training/families.ts");
  const { getModelFamily } = await import("../models/recognizer.ts");
  await loadModelFamilies();
  const family = getModelFamily(familyName);
  const map: KeyMap = getKeyMap(familyName);
  const read = await readOfficialState(path);
  const official = opts.select ? selectSubtree(read, opts.select) : read;
  const mapped = mapState(map, official);
  const inferred = map.config?.({ tensors: mapped.state, hyperParameters: official.hyperParameters }) ?? {};
  const config = family.config.parse({ ...inferred, ...opts.config }, []) as Record<string, unknown>;
  const data = { ...map.data, ...opts.data };
  const numClasses = charsetFor(data.protocol as Protocol).numClasses;
  const model = family.create(config, 0, numClasses);
  try {
    if (!model.state || !model.loadState) {
      throw new Error(`model family ${familyName} has no state()/loadState(); it cannot load PyTorch weights`);
    }
    const expected = new Map([...model.state()].map(([n, t]) => [n, t.shape] as const));
    checkFit(familyName, path, mapped, expected);
    model.loadState(mapped.state, { source: path });
  } catch (e) {
    model.dispose();
    throw e;
  }
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    model_family: familyName,
    model_config: config,
    num_classes: numClasses,
    data: { ...data, unsupported: "remove" },
    training: {
      imported_from: path,
      key_map: map.source,
      file_format: official.format,
      container: official.container || null,
      stripped_prefix: mapped.strippedPrefix || null,
      source_dtypes: mapped.dtypes,
      ignored_keys: mapped.ignored.length,
      selected: official.selected ?? null,
      lightning_version: official.lightning ?? null,
      hyper_parameters: official.hyperParameters ?? null,
    },
  };
  return { model, meta, official };
}

/** Loads an official file and writes it as a strata checkpoint (atomically) at `out`. */
export async function importOfficial(
  path: string,
  familyName: string,
  out: string,
  opts: LoadOfficialOptions = {},
): Promise<CheckpointMeta> {
  const { model, meta } = await loadOfficial(path, familyName, opts);
  try {
    await saveCheckpoint(out, { model, meta });
  } finally {
    model.dispose();
  }
  return meta;
}
