/**
 * Strided torch tensors → dense row-major `NamedTensor`s (strata's in-memory tensor type).
 *
 * Floating types (float64/32/16, bfloat16) become F32; integer types become I32 when every value fits
 * (int64 counters such as `num_batches_tracked` do); bool and uint8 become U8. Strides and storage offsets
 * are honoured (transposed, channels-last and sliced tensors read correctly), and a view that reaches past
 * the end of its storage is an error naming the tensor.
 */
import type { NamedTensor } from "../models/safetensors.ts";
import { ELEMENT_SIZE, type TorchDType, type TorchTensor } from "./pickle.ts";

const halfTable = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    t[h] = exp === 0
      ? sign * frac * 2 ** -24
      : exp === 31
      ? (frac ? NaN : sign * Infinity)
      : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return t;
})();

/** float16 bits → float32 value. */
export function halfToFloat(bits: number): number {
  return halfTable[bits & 0xffff];
}

function elementReader(dtype: TorchDType, bytes: Uint8Array): (i: number) => number | bigint {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "float64":
      return (i) => v.getFloat64(i * 8, true);
    case "float32":
      return (i) => v.getFloat32(i * 4, true);
    case "float16":
      return (i) => halfTable[v.getUint16(i * 2, true)];
    case "bfloat16": {
      const f = new Float32Array(1), u = new Uint32Array(f.buffer);
      return (i) => (u[0] = v.getUint16(i * 2, true) << 16, f[0]);
    }
    case "int64":
      return (i) => v.getBigInt64(i * 8, true);
    case "int32":
      return (i) => v.getInt32(i * 4, true);
    case "int16":
      return (i) => v.getInt16(i * 2, true);
    case "int8":
      return (i) => v.getInt8(i);
    case "uint8":
    case "bool":
      return (i) => v.getUint8(i);
  }
}

export const isFloatDType = (d: TorchDType) =>
  d === "float64" || d === "float32" || d === "float16" || d === "bfloat16";

/** Dense copy of a strided tensor. `name` and `source` go into errors. */
export function materialize(t: TorchTensor, name: string, source: string): NamedTensor {
  const { storage, shape, stride, offset } = t;
  const numel = shape.reduce((a, b) => a * b, 1);
  const bytes = storage.bytes;
  if (!bytes) throw new Error(`${source}: "${name}": storage ${storage.key} has no data`);
  const available = Math.floor(bytes.byteLength / ELEMENT_SIZE[storage.dtype]);
  if (numel > 0) {
    let last = offset;
    for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
    if (last >= Math.min(available, storage.numel)) {
      throw new Error(
        `${source}: "${name}" [${shape}] (stride [${stride}], offset ${offset}) reaches element ${last} of storage ` +
          `${storage.key}, which holds ${Math.min(available, storage.numel)}: the storage is shorter than the shape`,
      );
    }
  }
  const rank = shape.length;
  const contiguous = stride.every((s, d) => shape[d] === 1 || s === shape.slice(d + 1).reduce((a, b) => a * b, 1));
  if (contiguous && storage.dtype === "float32") {
    // A copy (aligned, independent of the file buffer; Uint8Array.prototype.slice also for Buffers).
    const raw = Uint8Array.prototype.slice.call(bytes, offset * 4, (offset + numel) * 4);
    return { dtype: "F32", shape: [...shape], data: new Float32Array(raw.buffer, 0, numel) };
  }
  const read = elementReader(storage.dtype, bytes);
  const float = isFloatDType(storage.dtype);
  const out: Float32Array | Int32Array | Uint8Array = float
    ? new Float32Array(numel)
    : storage.dtype === "bool" || storage.dtype === "uint8"
    ? new Uint8Array(numel)
    : new Int32Array(numel);
  // Odometer over the shape; contiguous row-major runs take the fast path.
  const index = new Array(rank).fill(0);
  let src = offset;
  for (let i = 0; i < numel; i++) {
    const at = contiguous ? offset + i : src;
    const x = read(at);
    if (typeof x === "bigint") {
      if (x > 2147483647n || x < -2147483648n) {
        throw new Error(`${source}: "${name}": int64 value ${x} does not fit in int32`);
      }
      out[i] = Number(x);
    } else out[i] = x;
    if (!contiguous) {
      for (let d = rank - 1; d >= 0; d--) {
        index[d]++;
        src += stride[d];
        if (index[d] < shape[d]) break;
        src -= stride[d] * shape[d];
        index[d] = 0;
      }
    }
  }
  const dtype = float ? "F32" : out instanceof Uint8Array ? "U8" : "I32";
  return { dtype, shape: [...shape], data: out };
}
