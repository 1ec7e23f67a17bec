/**
 * Checkpoints in safetensors (see training/README.md for the tensor names and metadata keys).
 *
 * - weights file (`best.safetensors`, `last.safetensors`): the model's weights and buffers under their own
 *   names, plus metadata (model family + config, data config, training summary).
 * - resume file (`resume.safetensors` in the stage's scratch directory): the same, plus the Adam moments
 *   `optimizer.exp_avg.<name>` / `optimizer.exp_avg_sq.<name>`, the update count `optimizer.step` (I32 [1])
 *   and the training state (`train_state` metadata: step, RNG states, best validation so far).
 *
 * Layout (metadata `layout`): `pytorch` — what `Recognizer.state()` gives (OIHW convs, `[out, in]` linears under
 * the official names), so a checkpoint is an ordinary PyTorch state dict (`checkpoints/torch_writer.ts` exports it
 * for `torch.load`). Files without `layout` (written before) and families without `state()` are `tfjs`: the
 * variables as the model holds them. Both read back. The Adam moments are always in the variables' (tfjs) layout.
 */
import * as tf from "@tensorflow/tfjs";
import type { Recognizer } from "../models/recognizer.ts";
import { type NamedTensor, readSafeTensors, type SafeTensorsFile, writeSafeTensors } from "../models/safetensors.ts";
import type { Adam } from "./adam.ts";

export const CHECKPOINT_FORMAT = "strata-checkpoint-v1";

/** What the model expects of its input and labels; stored so that evaluate/read preprocess identically. */
export interface DataConfig {
  height: number;
  width: number;
  channels: number;
  /** The loader's normalisation (as its params say, e.g. "imagenet" or "none"). */
  normalize: unknown;
  /** Charset protocol the model was trained with (36, 62 or 94). */
  protocol: number;
  max_length: number;
  [key: string]: unknown;
}

export interface CheckpointMeta {
  format: string;
  model_family: string;
  model_config: Record<string, unknown>;
  num_classes: number;
  data: DataConfig;
  /** Free-form training summary (params, step, validation metrics). */
  training: Record<string, unknown>;
}

async function tensorOf(v: tf.Tensor): Promise<NamedTensor> {
  const data = await v.data();
  if (v.dtype === "float32") return { dtype: "F32", shape: [...v.shape], data: data as Float32Array };
  if (v.dtype === "int32" || v.dtype === "bool") {
    return { dtype: "I32", shape: [...v.shape], data: Int32Array.from(data as Int32Array) };
  }
  throw new Error(`cannot checkpoint a ${v.dtype} tensor`);
}

function encodeMeta(meta: CheckpointMeta, extra: Record<string, string>): Record<string, string> {
  return {
    format: meta.format,
    model_family: meta.model_family,
    model_config: JSON.stringify(meta.model_config),
    num_classes: String(meta.num_classes),
    data: JSON.stringify(meta.data),
    training: JSON.stringify(meta.training),
    ...extra,
  };
}

export function decodeMeta(metadata: Record<string, string>, source: string): CheckpointMeta {
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${source}: not a strata checkpoint (metadata format "${metadata.format}")`);
  }
  const json = (key: string) => {
    try {
      return JSON.parse(metadata[key] ?? "{}");
    } catch (e) {
      throw new Error(`${source}: metadata "${key}" is not JSON (${(e as Error).message})`);
    }
  };
  return {
    format: metadata.format,
    model_family: metadata.model_family,
    model_config: json("model_config"),
    num_classes: Number(metadata.num_classes),
    data: json("data"),
    training: json("training"),
  };
}

export interface SaveOptions {
  model: Recognizer;
  meta: CheckpointMeta;
  /** Include the optimiser state (resume checkpoints). */
  optimizer?: Adam;
  /** Resumable training state, stored as JSON metadata `train_state`. */
  state?: Record<string, unknown>;
}

export type CheckpointLayout = "pytorch" | "tfjs";

export async function saveCheckpoint(path: string, opts: SaveOptions): Promise<void> {
  const tensors: [string, NamedTensor][] = [];
  const seen = new Set<string>();
  const push = (name: string, t: NamedTensor) => {
    if (seen.has(name)) throw new Error(`checkpoint ${path}: duplicate tensor name "${name}"`);
    seen.add(name);
    tensors.push([name, t]);
  };
  const add = async (name: string, t: tf.Tensor) => push(name, await tensorOf(t));
  // PyTorch layout only for families that can read it back.
  const layout: CheckpointLayout = opts.model.state && opts.model.loadState ? "pytorch" : "tfjs";
  if (layout === "pytorch") {
    for (const [name, t] of opts.model.state!()) push(name, t);
  } else {
    for (const [name, v] of opts.model.weights) await add(name, v);
    for (const [name, v] of opts.model.buffers) await add(name, v);
  }
  const extra: Record<string, string> = { kind: opts.optimizer ? "resume" : "weights", layout };
  if (opts.optimizer) {
    const o = opts.optimizer;
    for (const [name, v] of o.expAvg) await add(`optimizer.exp_avg.${name}`, v);
    for (const [name, v] of o.expAvgSq) await add(`optimizer.exp_avg_sq.${name}`, v);
    tensors.push(["optimizer.step", { dtype: "I32", shape: [1], data: Int32Array.of(o.step) }]);
    extra.optimizer = JSON.stringify({ type: "adam", beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon });
  }
  if (opts.state) extra.train_state = JSON.stringify(opts.state);
  await writeSafeTensors(path, tensors, encodeMeta(opts.meta, extra));
}

export interface LoadedCheckpoint {
  file: SafeTensorsFile;
  meta: CheckpointMeta;
  state?: Record<string, unknown>;
}

export async function readCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const file = await readSafeTensors(path);
  const meta = decodeMeta(file.metadata, path);
  const state = file.metadata.train_state ? JSON.parse(file.metadata.train_state) : undefined;
  return { file, meta, state };
}

function assignOne(v: tf.Variable, t: NamedTensor | undefined, name: string, source: string): void {
  if (!t) throw new Error(`${source}: tensor "${name}" is missing`);
  if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
    throw new Error(`${source}: tensor "${name}" has shape [${t.shape}], the model expects [${v.shape}]`);
  }
  const dtype = v.dtype === "float32" ? "float32" : "int32";
  tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, dtype)));
}

/** The layout of a checkpoint's model tensors (`tfjs` for files written before the layout was recorded). */
export function checkpointLayout(file: SafeTensorsFile, source: string): CheckpointLayout {
  const layout = file.metadata.layout ?? "tfjs";
  if (layout !== "pytorch" && layout !== "tfjs") throw new Error(`${source}: unknown checkpoint layout "${layout}"`);
  return layout;
}

/** Copies weights and buffers (and, when given, the optimiser state) from a checkpoint into live variables. */
export function restoreInto(file: SafeTensorsFile, source: string, model: Recognizer, optimizer?: Adam): void {
  if (checkpointLayout(file, source) === "pytorch") {
    if (!model.loadState) throw new Error(`${source}: PyTorch layout, but family ${model.family} has no loadState()`);
    const state = new Map([...file.tensors].filter(([name]) => !name.startsWith("optimizer.")));
    model.loadState(state, { source });
  } else {
    for (const [name, v] of model.weights) assignOne(v, file.tensors.get(name), name, source);
    for (const [name, v] of model.buffers) assignOne(v, file.tensors.get(name), name, source);
  }
  if (optimizer) {
    for (const [name, v] of optimizer.expAvg) {
      assignOne(v, file.tensors.get(`optimizer.exp_avg.${name}`), `optimizer.exp_avg.${name}`, source);
    }
    for (const [name, v] of optimizer.expAvgSq) {
      assignOne(v, file.tensors.get(`optimizer.exp_avg_sq.${name}`), `optimizer.exp_avg_sq.${name}`, source);
    }
    const step = file.tensors.get("optimizer.step");
    if (!step) throw new Error(`${source}: tensor "optimizer.step" is missing`);
    optimizer.step = step.data[0];
  }
}

/** Builds a read checkpoint's model family with its config and loads the weights. */
export async function modelFromCheckpoint(ck: LoadedCheckpoint, path: string): Promise<Recognizer> {
  const { loadModelFamilies } = await import("./families.ts");
  const { getModelFamily } = await import("../models/recognizer.ts");
  await loadModelFamilies();
  const family = getModelFamily(ck.meta.model_family);
  const model = family.create(ck.meta.model_config, 0, ck.meta.num_classes);
  try {
    restoreInto(ck.file, path, model);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** Builds the checkpoint's model family with its config and loads the weights (eval use: evaluate, read). */
export async function loadRecognizer(path: string): Promise<{ model: Recognizer; meta: CheckpointMeta }> {
  const ck = await readCheckpoint(path);
  return { model: await modelFromCheckpoint(ck, path), meta: ck.meta };
}

/**
 * A checkpoint's weights and buffers in the variables' (tfjs) layout under the model's names, whatever layout the
 * file holds (a PyTorch-layout file is loaded into its model and read back), e.g. for `Recognizer.initFrom`.
 */
export async function variableTensors(ck: LoadedCheckpoint, path: string): Promise<ReadonlyMap<string, NamedTensor>> {
  if (checkpointLayout(ck.file, path) === "tfjs") return ck.file.tensors;
  const model = await modelFromCheckpoint(ck, path);
  try {
    const out = new Map<string, NamedTensor>();
    for (const [name, v] of [...model.weights, ...model.buffers]) out.set(name, await tensorOf(v));
    return out;
  } finally {
    model.dispose();
  }
}
