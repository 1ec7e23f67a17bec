/**
 * safetensors reading and writing, without tfjs: checkpoints, fixture
 * weights and parity data all go through here.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON header
 * (`{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}`),
 * then the raw little-endian row-major data.
 */

export type SafeDType = "F32" | "I32" | "U8";

export interface NamedTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

export interface SafeTensorsFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafeDType, number> = { F32: 4, I32: 4, U8: 1 };

export function decodeSafeTensors(bytes: Uint8Array, source = "safetensors data"): SafeTensorsFile {
  if (bytes.byteLength < 8) throw new Error(`${source}: too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.byteLength) throw new Error(`${source}: header length ${headerLength} exceeds file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new Error(`${source}: header is not JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) throw new Error(`${source}: tensor "${name}" has unsupported dtype ${dtype}`);
    const [begin, end] = data_offsets;
    const numel = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== numel * BYTES[dtype as SafeDType] || dataStart + end > bytes.byteLength) {
      throw new Error(`${source}: tensor "${name}" offsets [${begin}, ${end}] do not match shape [${shape}]`);
    }
    // Copy so the result is aligned and independent of the file buffer.
    const raw = bytes.slice(dataStart + begin, dataStart + end);
    const data = dtype === "F32"
      ? new Float32Array(raw.buffer, 0, numel)
      : dtype === "I32"
      ? new Int32Array(raw.buffer, 0, numel)
      : raw;
    tensors.set(name, { dtype: dtype as SafeDType, shape, data });
  }
  return { tensors, metadata };
}

export async function readSafeTensors(path: string): Promise<SafeTensorsFile> {
  return decodeSafeTensors(await Deno.readFile(path), path);
}

export function encodeSafeTensors(
  tensors: Iterable<[string, NamedTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const size = t.data.byteLength;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel * BYTES[t.dtype] !== size) throw new Error(`tensor "${name}": shape [${t.shape}] does not match data`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad to 8 bytes so the data section is aligned for typed-array views.
  while ((json.length + 8) % 8 !== 0) json += " ";
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Writes atomically (temp file + rename) so an interrupted checkpoint never replaces a good one. */
export async function writeSafeTensors(
  path: string,
  tensors: Iterable<[string, NamedTensor]>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeFile(tmp, encodeSafeTensors(tensors, metadata));
  await Deno.rename(tmp, path);
}
