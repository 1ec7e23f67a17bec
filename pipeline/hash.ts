/**
 * Canonical JSON (sorted keys, normalised numbers) and SHA-256 of strings
 * and files. File hashing streams through node:crypto with large buffers.
 */
import { createHash } from "node:crypto";

/** Canonical JSON: object keys sorted, `undefined` members dropped, -0 → 0, non-finite numbers rejected. */
export function canonicalJson(value: unknown): string {
  return canon(value, "");
}

function canon(v: unknown, where: string): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw new Error(`cannot canonicalise non-finite number at ${where || "(root)"}`);
      return JSON.stringify(v === 0 ? 0 : v);
    case "string":
    case "boolean":
      return JSON.stringify(v);
    case "bigint":
      return JSON.stringify(v.toString());
    case "object": {
      if (Array.isArray(v)) {
        return `[${v.map((x, i) => canon(x === undefined ? null : x, `${where}[${i}]`)).join(",")}]`;
      }
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canon(obj[k], `${where}.${k}`)}`).join(",")}}`;
    }
    default:
      throw new Error(`cannot canonicalise ${typeof v} at ${where || "(root)"}`);
  }
}

export function sha256Text(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/** sha256 of the canonical JSON of a value. */
export function digestOf(value: unknown): string {
  return sha256Text(canonicalJson(value));
}

/** Bytes read by `hashFile` in this process (for tests and the benchmark). */
export const hashStats = { bytesRead: 0, filesHashed: 0 };

const CHUNK = 8 << 20;
let sharedBuffer: Uint8Array | undefined;

/** Streams a file through SHA-256. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const file = await Deno.open(path, { read: true });
  try {
    const hash = createHash("sha256");
    // One buffer per concurrent call: reuse the shared one when free.
    const buf = sharedBuffer ?? new Uint8Array(CHUNK);
    sharedBuffer = undefined;
    let size = 0;
    try {
      while (true) {
        const n = await file.read(buf);
        if (n === null) break;
        hash.update(buf.subarray(0, n));
        size += n;
      }
    } finally {
      sharedBuffer = buf;
    }
    hashStats.bytesRead += size;
    hashStats.filesHashed++;
    return { sha256: hash.digest("hex"), size };
  } finally {
    file.close();
  }
}
