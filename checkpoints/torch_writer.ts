/**
 * Writes a state dict as a `torch.save` zip file (the format of PyTorch ≥ 1.6) that `torch.load` reads:
 * `archive/data.pkl` (protocol 2 pickle of an `OrderedDict` of `_rebuild_tensor_v2` tensors), one stored member
 * `archive/data/<i>` per tensor, `archive/version` and `archive/byteorder`. Members are stored, not deflated,
 * which `torch.load` reads without the 64-byte alignment PyTorch's own writer adds.
 */
import { type Zippable, zipSync } from "fflate";
import type { NamedTensor } from "../models/safetensors.ts";

const STORAGE: Record<NamedTensor["dtype"], string> = { F32: "FloatStorage", I32: "IntStorage", U8: "ByteStorage" };

class PickleWriter {
  #parts: number[] = [];
  byte(...b: number[]) {
    this.#parts.push(...b);
  }
  int(n: number) {
    if (n >= 0 && n < 256) this.byte(0x4b, n); // BININT1
    else if (n >= 0 && n < 65536) this.byte(0x4d, n & 0xff, n >> 8); // BININT2
    else this.byte(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff); // BININT
  }
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.byte(0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, b.length >>> 24, ...b);
  }
  global(module: string, name: string) {
    this.byte(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  mark() {
    this.byte(0x28);
  }
  tuple() {
    this.byte(0x74);
  }
  ints(xs: readonly number[]) {
    this.mark();
    for (const x of xs) this.int(x);
    this.tuple();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

function contiguousStrides(shape: readonly number[]): number[] {
  return shape.map((_d, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
}

/** The bytes of a torch.save zip holding `state` (in order). */
export function encodeTorchZip(state: Iterable<[string, NamedTensor]>, archive = "archive"): Uint8Array {
  const w = new PickleWriter();
  w.byte(0x80, 2); // PROTO 2
  w.global("collections", "OrderedDict");
  w.byte(0x29, 0x52); // EMPTY_TUPLE, REDUCE → OrderedDict()
  w.mark();
  const files: Zippable = {};
  let key = 0;
  for (const [name, t] of state) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== numel) throw new Error(`torch export: "${name}" shape [${t.shape}] does not match its data`);
    w.str(name);
    w.global("torch._utils", "_rebuild_tensor_v2");
    w.mark();
    // persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel)
    w.mark();
    w.str("storage");
    w.global("torch", STORAGE[t.dtype]);
    w.str(String(key));
    w.str("cpu");
    w.int(numel);
    w.tuple();
    w.byte(0x51); // BINPERSID
    w.int(0); // storage offset
    w.ints(t.shape);
    w.ints(contiguousStrides(t.shape));
    w.byte(0x89); // requires_grad False
    w.global("collections", "OrderedDict");
    w.byte(0x29, 0x52); // backward hooks: OrderedDict()
    w.tuple();
    w.byte(0x52); // REDUCE
    files[`${archive}/data/${key}`] = [
      new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice(),
      { level: 0 },
    ];
    key++;
  }
  w.byte(0x75, 0x2e); // SETITEMS, STOP
  const ordered: Zippable = {
    [`${archive}/data.pkl`]: [w.bytes(), { level: 0 }],
    [`${archive}/byteorder`]: [new TextEncoder().encode("little"), { level: 0 }],
    ...files,
    [`${archive}/version`]: [new TextEncoder().encode("3\n"), { level: 0 }],
  };
  return zipSync(ordered, { level: 0 });
}

/** Writes atomically (temp name, then rename). */
export async function writeTorchZip(path: string, state: Iterable<[string, NamedTensor]>): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeFile(tmp, encodeTorchZip(state));
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
