/**
 * Finds the state dict inside a checkpoint file and turns it into dense tensors.
 *
 * Files: `torch.save` zip or legacy (`torch_file.ts`) and safetensors (any of F64/F32/F16/BF16/I64/I32/I16/I8/U8/
 * BOOL). Containers recognised, in this order:
 *
 * - a bare state dict (every value a tensor);
 * - a PyTorch Lightning checkpoint: `state_dict` (+ `hyper_parameters`, `pytorch-lightning_version`);
 * - `model` (ABINet / fastai `Learner.save`: `{model, opt}`), `model_state_dict`, `state_dict`, `net`.
 */
import type { NamedTensor } from "../models/safetensors.ts";
import { PyTuple, StorageType, type TorchDType, TorchStorage, TorchTensor } from "./pickle.ts";
import { materialize } from "./tensor.ts";
import { CheckpointFormatError, decodeTorchFile } from "./torch_file.ts";

export interface SourceTensor {
  tensor: NamedTensor;
  /** The dtype in the file (float16, int64, …). */
  dtype: TorchDType;
}

export interface OfficialState {
  source: string;
  format: "zip" | "legacy" | "safetensors";
  /** Where in the file the state dict was: "" (the file itself), "state_dict", "model", … */
  container: string;
  /** Dense tensors under the file's names, in the file's order. */
  tensors: Map<string, SourceTensor>;
  /** Lightning's `hyper_parameters` (plain JSON), when present. */
  hyperParameters?: Record<string, unknown>;
  /** Lightning's version string, when present. */
  lightning?: string;
  /** safetensors `__metadata__`, when present. */
  metadata?: Record<string, string>;
  /** Set when only a subtree was kept (`select`): its prefix and the counts kept and dropped. */
  selected?: { prefix: string; kept: number; dropped: number };
}

const CONTAINER_KEYS = ["state_dict", "model", "model_state_dict", "net"];

/** Python data → JSON-able values (for hyper parameters and messages). */
export function toJson(v: unknown, depth = 0): unknown {
  if (depth > 32) return "<too deep>";
  if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string") return v;
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) return `<bytes ${v.length}>`;
  if (v instanceof TorchTensor) return `<tensor [${v.shape}] ${v.storage.dtype}>`;
  if (v instanceof TorchStorage || v instanceof StorageType) return "<storage>";
  if (v instanceof PyTuple) return v.items.map((x) => toJson(x, depth + 1));
  if (Array.isArray(v)) return v.map((x) => toJson(x, depth + 1));
  if (v instanceof Set) return [...v].map((x) => toJson(x, depth + 1));
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[String(k)] = toJson(x, depth + 1);
    return o;
  }
  return `<${typeof v}>`;
}

function isTensorMap(v: unknown): v is Map<unknown, unknown> {
  if (!(v instanceof Map) || v.size === 0) return false;
  for (const x of v.values()) if (!(x instanceof TorchTensor)) return false;
  return true;
}

function describeTop(v: unknown): string {
  if (v instanceof Map) {
    return `a dict with keys ${[...v.keys()].slice(0, 12).map((k) => JSON.stringify(k)).join(", ")}`;
  }
  return `a ${Array.isArray(v) ? "list" : v instanceof PyTuple ? "tuple" : typeof v}`;
}

function denseAll(map: Map<unknown, unknown>, source: string): Map<string, SourceTensor> {
  const out = new Map<string, SourceTensor>();
  for (const [k, t] of map) {
    const name = String(k);
    const tt = t as TorchTensor;
    out.set(name, { tensor: materialize(tt, name, source), dtype: tt.storage.dtype });
  }
  return out;
}

function fromTorch(value: unknown, source: string, format: "zip" | "legacy"): OfficialState {
  if (isTensorMap(value)) return { source, format, container: "", tensors: denseAll(value, source) };
  if (!(value instanceof Map)) {
    throw new CheckpointFormatError(`${source}: holds ${describeTop(value)}, not a state dict`);
  }
  const lightning = value.get("pytorch-lightning_version");
  for (const key of CONTAINER_KEYS) {
    const inner = value.get(key);
    if (!isTensorMap(inner)) continue;
    const hp = value.get("hyper_parameters");
    return {
      source,
      format,
      container: key,
      tensors: denseAll(inner, `${source}: ${key}`),
      hyperParameters: hp instanceof Map ? toJson(hp) as Record<string, unknown> : undefined,
      lightning: typeof lightning === "string" ? lightning : undefined,
    };
  }
  throw new CheckpointFormatError(
    `${source}: no state dict found: the file holds ${describeTop(value)}; looked for a dict of tensors at the ` +
      `top or under ${CONTAINER_KEYS.map((k) => JSON.stringify(k)).join(", ")}`,
  );
}

const SAFE_DTYPES: Record<string, TorchDType> = {
  F64: "float64",
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};

const SIZE: Record<TorchDType, number> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** safetensors with every standard dtype (the model-side reader knows only F32/I32/U8). */
function fromSafeTensors(bytes: Uint8Array, source: string): OfficialState {
  if (bytes.byteLength < 8) throw new CheckpointFormatError(`${source}: too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.byteLength) throw new CheckpointFormatError(`${source}: header length ${n} exceeds the file`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new CheckpointFormatError(`${source}: safetensors header is not JSON (${(e as Error).message})`);
  }
  const tensors = new Map<string, SourceTensor>();
  let metadata: Record<string, string> | undefined;
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = e as unknown as Record<string, string>;
      continue;
    }
    const dtype = SAFE_DTYPES[e.dtype];
    if (!dtype) throw new CheckpointFormatError(`${source}: "${name}" has unsupported dtype ${e.dtype}`);
    const [begin, end] = e.data_offsets;
    const numel = e.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== numel * SIZE[dtype] || 8 + n + end > bytes.byteLength) {
      throw new CheckpointFormatError(
        `${source}: "${name}" data [${begin}, ${end}) does not fit shape [${e.shape}] ${e.dtype} (truncated file?)`,
      );
    }
    const storage = new TorchStorage(name, dtype, numel, "cpu");
    storage.bytes = bytes.subarray(8 + n + begin, 8 + n + end);
    const stride = e.shape.map((_d, i) => e.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const t = new TorchTensor(storage, 0, e.shape, stride, false);
    tensors.set(name, { tensor: materialize(t, name, source), dtype });
  }
  return { source, format: "safetensors", container: "", tensors, metadata };
}

function looksLikeSafeTensors(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 10) return false;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return n > 0n && n < BigInt(bytes.byteLength) && bytes[8] === 0x7b; // "{"
}

/** Reads a checkpoint file of any supported format and returns its state dict. */
export async function decodeOfficialState(bytes: Uint8Array, source: string): Promise<OfficialState> {
  if (looksLikeSafeTensors(bytes)) return fromSafeTensors(bytes, source);
  const file = await decodeTorchFile(bytes, source);
  return fromTorch(file.value, source, file.format);
}

export async function readOfficialState(path: string): Promise<OfficialState> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read the checkpoint (${(e as Error).message})`);
  }
  return await decodeOfficialState(bytes, path);
}
