/**
 * Reads the files `torch.save` writes, without Python:
 *
 * - **zip** (PyTorch ≥ 1.6, the default): `<name>/data.pkl` (the pickled object), `<name>/data/<key>` (one raw
 *   little-endian storage per key), `<name>/version`, optionally `<name>/byteorder`. The zip is read with yauzl
 *   (`data/archive.ts`, the project's one zip reader).
 * - **legacy** (`_use_new_zipfile_serialization=False`, and every file of PyTorch < 1.6, e.g. the released
 *   ABINet weights): four pickles in a row (magic number, protocol 1001, sys_info, the object), a pickled list of
 *   storage keys, then per key an int64 element count and the raw bytes.
 *
 * The pickles go through the restricted interpreter of `pickle.ts`; storages are attached to the
 * `TorchStorage` objects it creates. The pre-0.4 tar format (`storages`/`tensors`/`pickle` members) is recognised
 * and refused with a clear message.
 */
import { readZipMembers } from "../data/archive.ts";
import { ELEMENT_SIZE, PickleError, PyTuple, StorageType, TorchStorage, unpickle } from "./pickle.ts";

export type TorchFormat = "zip" | "legacy";

export interface TorchFile {
  format: TorchFormat;
  /** The unpickled object (a state dict, a Lightning checkpoint dict, …). */
  value: unknown;
  /** Every storage, by key, with its bytes. */
  storages: Map<string, TorchStorage>;
}

export class CheckpointFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointFormatError";
  }
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4;
}

export function isTar(bytes: Uint8Array): boolean {
  return bytes.length >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar";
}

/** A pickle starting with PROTO (0x80 n): the legacy format (or a bare pickle). */
export function isPickle(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5;
}

function storageLoader(source: string, storages: Map<string, TorchStorage>) {
  return (pid: unknown, at: number): unknown => {
    const items = pid instanceof PyTuple ? pid.items : undefined;
    if (!items || items[0] !== "storage") {
      throw new PickleError(source, at, `unsupported persistent id ${JSON.stringify(items?.[0] ?? String(pid))}`);
    }
    const [, type, rawKey, location, rawNumel] = items;
    if (!(type instanceof StorageType)) throw new PickleError(source, at, "persistent id without a storage type");
    const key = String(rawKey);
    const numel = Number(rawNumel);
    if (!Number.isSafeInteger(numel) || numel < 0) throw new PickleError(source, at, `storage ${key}: bad size`);
    // Legacy views (view_metadata) are an old feature of storage sharing; refuse rather than misread.
    if (items.length > 5 && items[5] !== null) {
      throw new PickleError(source, at, `storage ${key}: storage views (view_metadata) are not supported`);
    }
    let s = storages.get(key);
    if (!s) storages.set(key, s = new TorchStorage(key, type.dtype, numel, String(location)));
    else if (s.dtype !== type.dtype) {
      // The same bytes seen as another type (allowed by torch ≥ 2 untyped storages): refuse, nothing here needs it.
      throw new PickleError(source, at, `storage ${key} is used as both ${s.dtype} and ${type.dtype}`);
    }
    return s;
  };
}

function byteSwap(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j];
  return out;
}

async function readZip(bytes: Uint8Array, source: string): Promise<TorchFile> {
  let files: Record<string, Uint8Array>;
  try {
    files = Object.fromEntries(await readZipMembers(bytes));
  } catch (e) {
    throw new CheckpointFormatError(
      `${source}: not a readable zip archive (truncated or corrupt?): ${(e as Error).message}`,
    );
  }
  const names = Object.keys(files);
  const pkl = names.find((n) => /^[^/]+\/data\.pkl$/.test(n)) ?? names.find((n) => n === "data.pkl");
  if (!pkl) throw new CheckpointFormatError(`${source}: zip without <name>/data.pkl: not a torch.save file`);
  const prefix = pkl.slice(0, pkl.length - "data.pkl".length);
  const byteorder = files[`${prefix}byteorder`]
    ? new TextDecoder().decode(files[`${prefix}byteorder`]).trim()
    : "little";
  if (byteorder !== "little" && byteorder !== "big") {
    throw new CheckpointFormatError(`${source}: unknown byteorder record "${byteorder}"`);
  }
  const storages = new Map<string, TorchStorage>();
  const { value } = unpickle(files[pkl], 0, {
    source: `${source}: ${pkl}`,
    persistentLoad: storageLoader(`${source}: ${pkl}`, storages),
  });
  for (const s of storages.values()) {
    const member = `${prefix}data/${s.key}`;
    const data = files[member];
    if (!data) throw new CheckpointFormatError(`${source}: storage ${s.key}: member ${member} is missing`);
    const size = ELEMENT_SIZE[s.dtype];
    if (data.byteLength < s.numel * size) {
      throw new CheckpointFormatError(
        `${source}: storage ${s.key} (${member}) holds ${data.byteLength} bytes, ${s.numel} ${s.dtype} need ${
          s.numel * size
        }`,
      );
    }
    s.bytes = byteorder === "big" && size > 1 ? byteSwap(data, size) : data;
  }
  return { format: "zip", value, storages };
}

function readLegacy(bytes: Uint8Array, source: string): TorchFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = unpickle(bytes, 0, { source: `${source} (magic number)` });
  if (BigInt(magic.value as number | bigint) !== LEGACY_MAGIC) {
    throw new CheckpointFormatError(`${source}: a pickle, but not a torch.save file (no legacy magic number)`);
  }
  const protocol = unpickle(bytes, magic.end, { source: `${source} (protocol)` });
  if (protocol.value !== 1001) {
    throw new CheckpointFormatError(`${source}: legacy protocol ${protocol.value}, expected 1001`);
  }
  const sysInfo = unpickle(bytes, protocol.end, { source: `${source} (sys_info)` });
  const info = sysInfo.value instanceof Map ? sysInfo.value : new Map();
  if (info.get("little_endian") === false) {
    throw new CheckpointFormatError(`${source}: written on a big-endian machine; not supported`);
  }
  const storages = new Map<string, TorchStorage>();
  const main = unpickle(bytes, sysInfo.end, { source, persistentLoad: storageLoader(source, storages) });
  const keysPickle = unpickle(bytes, main.end, { source: `${source} (storage keys)` });
  const keys = keysPickle.value;
  if (!Array.isArray(keys)) throw new CheckpointFormatError(`${source}: the storage key list is not a list`);
  let pos = keysPickle.end;
  for (const k of keys) {
    const s = storages.get(String(k));
    if (!s) throw new CheckpointFormatError(`${source}: storage key ${k} is not used by the pickle`);
    if (pos + 8 > bytes.byteLength) {
      throw new CheckpointFormatError(`${source}: storage ${s.key}: the file ends before its size (truncated?)`);
    }
    const count = Number(view.getBigInt64(pos, true));
    pos += 8;
    const size = ELEMENT_SIZE[s.dtype];
    if (count !== s.numel) {
      throw new CheckpointFormatError(
        `${source}: storage ${s.key}: ${count} elements on disk, the pickle says ${s.numel}`,
      );
    }
    if (pos + count * size > bytes.byteLength) {
      throw new CheckpointFormatError(
        `${source}: storage ${s.key}: needs ${count * size} bytes at offset ${pos}, the file has ${
          bytes.byteLength - pos
        } (truncated?)`,
      );
    }
    s.bytes = bytes.subarray(pos, pos + count * size);
    pos += count * size;
  }
  for (const s of storages.values()) {
    if (!s.bytes) throw new CheckpointFormatError(`${source}: storage ${s.key} has no data in the file`);
  }
  return { format: "legacy", value: main.value, storages };
}

/** Parses torch.save bytes (zip or legacy). */
export async function decodeTorchFile(bytes: Uint8Array, source: string): Promise<TorchFile> {
  if (isZip(bytes)) return await readZip(bytes, source);
  if (isPickle(bytes)) return readLegacy(bytes, source);
  if (isTar(bytes)) {
    throw new CheckpointFormatError(
      `${source}: the tar format of PyTorch < 0.4 is not supported; re-save it with a newer PyTorch`,
    );
  }
  throw new CheckpointFormatError(`${source}: neither a torch.save zip nor a legacy torch pickle`);
}

export async function readTorchFile(path: string): Promise<TorchFile> {
  return await decodeTorchFile(await Deno.readFile(path), path);
}
