/**
 * A restricted pickle interpreter: the opcodes of protocols 0–5 that plain data needs (numbers, strings,
 * bytes, lists, tuples, dicts, sets, memo, frames), and a fixed allow-list of globals, those a PyTorch
 * state dict is made of (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`,
 * the typed storage classes, numpy scalars). Any other global (`os.system`, `builtins.eval`, `numpy.load`) is refused with an
 * error that names it, and so are the opcodes that instantiate arbitrary classes (`INST`, `OBJ`, `EXT*`,
 * out-of-band buffers). Unpickling therefore never runs code: the allowed "calls" are implemented here.
 *
 * Values: `None` → null, bool → boolean, int → number (bigint beyond 2^53), float → number, str → string,
 * bytes → Uint8Array, list → array, tuple → `PyTuple`, dict / OrderedDict → `Map`, set → `Set`. Tensors
 * and storages are `TorchTensor` / `TorchStorage` (see `torch_file.ts`, which supplies `persistent_load`).
 */

export class PickleError extends Error {
  constructor(source: string, at: number, reason: string) {
    super(`${source}: byte ${at}: ${reason}`);
    this.name = "PickleError";
  }
}

/** A Python tuple (distinct from a list, so that `persistent_load` ids and reduce arguments keep their kind). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

export type TorchDType =
  | "float64"
  | "float32"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

export const ELEMENT_SIZE: Record<TorchDType, number> = {
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

/** A `torch.*Storage` class named in a persistent id. */
export class StorageType {
  constructor(readonly name: string, readonly dtype: TorchDType) {}
}

/** A storage: raw little-endian bytes once the file reader has attached them (`bytes`). */
export class TorchStorage {
  bytes?: Uint8Array;
  constructor(
    readonly key: string,
    readonly dtype: TorchDType,
    /** Elements the file says it holds. */
    readonly numel: number,
    readonly location: string,
  ) {}
}

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view into a storage. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
    /** True when pickled as an `nn.Parameter`. */
    readonly parameter = false,
  ) {}
}

const STORAGE_TYPES: Record<string, TorchDType> = {
  DoubleStorage: "float64",
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
};

/** A `numpy.dtype` as pickled inside numpy scalars (e.g. a learning rate fastai stored as `numpy.float64`). */
export class NumpyDType {
  constructor(readonly spec: string) {}
}

/** `numpy.core.multiarray.scalar(dtype, bytes)`: decodes the little-endian value; nothing else of numpy is allowed. */
function numpyScalar(args: unknown[], fail: (reason: string) => never): number | bigint | boolean {
  const [dtype, raw] = args;
  if (!(dtype instanceof NumpyDType) || !(raw instanceof Uint8Array)) fail("numpy scalar: expected (dtype, bytes)");
  const b = raw as Uint8Array;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const spec = (dtype as NumpyDType).spec.replace(/^[<=|]/, "");
  const need = (n: number) => b.byteLength === n || fail(`numpy scalar ${spec}: ${b.byteLength} bytes`);
  switch (spec) {
    case "f8":
      return need(8) && v.getFloat64(0, true);
    case "f4":
      return need(4) && v.getFloat32(0, true);
    case "i8":
      return need(8) && Number(v.getBigInt64(0, true));
    case "i4":
      return need(4) && v.getInt32(0, true);
    case "u1":
      return need(1) && v.getUint8(0);
    case "b1":
      return need(1) && v.getUint8(0) !== 0;
  }
  return fail(`numpy scalar of dtype "${spec}" is not supported`);
}

/** A callable global of the allow-list. */
class PyGlobal {
  constructor(readonly name: string, readonly call: (args: unknown[], at: number) => unknown) {}
}

/** The `torch.Size`-like shape/stride argument: a tuple of non-negative integers. */
function intTuple(v: unknown, what: string, fail: (reason: string) => never): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : fail(`${what} is not a tuple`);
  return items.map((x) => {
    const n = typeof x === "bigint" ? Number(x) : x;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) fail(`${what} holds ${String(x)}, not a size`);
    return n as number;
  });
}

function rebuildTensor(args: unknown[], fail: (reason: string) => never): TorchTensor {
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!(storage instanceof TorchStorage)) fail("_rebuild_tensor: the first argument is not a storage");
  const off = typeof offset === "bigint" ? Number(offset) : offset;
  if (typeof off !== "number" || !Number.isInteger(off) || off < 0) fail(`_rebuild_tensor: bad storage offset ${off}`);
  const shape = intTuple(size, "_rebuild_tensor size", fail);
  const strides = intTuple(stride, "_rebuild_tensor stride", fail);
  if (shape.length !== strides.length) fail(`_rebuild_tensor: size [${shape}] and stride [${strides}] differ in rank`);
  return new TorchTensor(storage as TorchStorage, off as number, shape, strides, requiresGrad === true);
}

/** The allow-list: fully qualified name → implementation. Nothing here executes checkpoint-supplied code. */
function allowedGlobal(
  module: string,
  name: string,
  fail: (reason: string) => never,
): PyGlobal | StorageType | undefined {
  const full = `${module}.${name}`;
  if (module === "torch" && name in STORAGE_TYPES) return new StorageType(full, STORAGE_TYPES[name]);
  switch (full) {
    case "collections.OrderedDict":
      return new PyGlobal(full, (args) => {
        if (args.length > 0) fail("collections.OrderedDict called with arguments");
        return new Map();
      });
    case "torch._utils._rebuild_tensor":
    case "torch._utils._rebuild_tensor_v2":
      return new PyGlobal(full, (args) => rebuildTensor(args, fail));
    case "torch._utils._rebuild_parameter":
    case "torch._utils._rebuild_parameter_with_state":
      return new PyGlobal(full, (args) => {
        const t = args[0];
        if (!(t instanceof TorchTensor)) fail(`${full}: the first argument is not a tensor`);
        const x = t as TorchTensor;
        return new TorchTensor(x.storage, x.offset, x.shape, x.stride, args[1] === true, true);
      });
    case "numpy.dtype":
      return new PyGlobal(full, (args) => new NumpyDType(String(args[0])));
    case "numpy.core.multiarray.scalar":
    case "numpy._core.multiarray.scalar":
      return new PyGlobal(full, (args) => numpyScalar(args, fail));
    case "torch.Size":
      return new PyGlobal(full, (args) => new PyTuple(intTuple(args[0] ?? new PyTuple([]), "torch.Size", fail)));
    case "_codecs.encode":
      // How protocol 2 pickles Python 3 `bytes`: _codecs.encode(text, "latin1").
      return new PyGlobal(full, (args) => {
        const [text, encoding] = args;
        if (typeof text !== "string" || (encoding !== "latin1" && encoding !== "latin-1")) {
          fail(`_codecs.encode: only (str, "latin1") is supported, got encoding ${JSON.stringify(encoding)}`);
        }
        return Uint8Array.from(text as string, (c) => c.charCodeAt(0) & 0xff);
      });
  }
  return undefined;
}

export const ALLOWED_GLOBALS = [
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
  "torch.Size",
  "_codecs.encode",
  "numpy.dtype",
  "numpy.core.multiarray.scalar",
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
];

export interface UnpickleOptions {
  /** For error messages: the file (and member) being read. */
  source: string;
  /** Resolves a persistent id (`BINPERSID`); absent → persistent ids are refused. */
  persistentLoad?: (pid: unknown, at: number) => unknown;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode (the legacy format has several pickles in a row). */
  end: number;
}

/** Unpickles one object from `bytes` starting at `start`. */
export function unpickle(bytes: Uint8Array, start: number, opts: UnpickleOptions): UnpickleResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let pos = start;
  let opAt = start;
  const stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const fail = (reason: string): never => {
    throw new PickleError(opts.source, opAt, reason);
  };
  const need = (n: number) => {
    if (pos + n > bytes.byteLength) fail(`pickle data ends early (needs ${n} more bytes; the file is truncated?)`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), pos += 2, view.getUint16(pos - 2, true));
  const u32 = () => (need(4), pos += 4, view.getUint32(pos - 4, true));
  const i32 = () => (need(4), pos += 4, view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("pickle data ends inside a text line");
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const str = (b: Uint8Array) => {
    try {
      return utf8.decode(b);
    } catch {
      return fail("string is not valid UTF-8");
    }
  };
  const pop = () => (stack.length === 0 ? fail("stack underflow") : stack.pop());
  const top = () => (stack.length === 0 ? fail("stack underflow") : stack[stack.length - 1]);
  const popMark = (): unknown[] => {
    const items = stack.splice(0);
    const prev = metastack.pop();
    if (!prev) fail("MARK expected");
    stack.push(...prev!);
    return items;
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const key = (k: unknown): unknown => {
    if (k instanceof PyTuple) return JSON.stringify(k.items, (_x, v) => typeof v === "bigint" ? String(v) : v);
    if (k !== null && typeof k === "object" && !(k instanceof Uint8Array)) fail("unhashable dict key");
    return k;
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map)) fail("SETITEM(S) on something that is not a dict");
    if (items.length % 2 !== 0) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) (target as Map<unknown, unknown>).set(key(items[i]), items[i + 1]);
  };
  const global = (module: string, name: string) => {
    const g = allowedGlobal(module, name, fail);
    if (!g) {
      fail(
        `forbidden global "${module}.${name}": a checkpoint is data and loading it never runs code; ` +
          `allowed globals: ${ALLOWED_GLOBALS.join(", ")}`,
      );
    }
    return g;
  };
  const call = (callable: unknown, args: unknown) => {
    if (!(callable instanceof PyGlobal)) {
      fail(`cannot call ${callable instanceof StorageType ? callable.name : typeof callable} (only allowed globals)`);
    }
    if (!(args instanceof PyTuple)) fail("REDUCE arguments are not a tuple");
    return (callable as PyGlobal).call((args as PyTuple).items, opAt);
  };

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("pickle protocol above 5");
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        metastack.push(stack.splice(0));
        break;
      case 0x30: // POP
        if (stack.length === 0) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      // ---- constants
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(long(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        stack.push(long(take(n)));
        break;
      }
      case 0x49: { // INT (text; "00"/"01" are False/True)
        const s = line();
        if (s === "00" || s === "01") stack.push(s === "01");
        else {
          const v = BigInt(s);
          stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        }
        break;
      }
      case 0x4c: { // LONG (text)
        const v = BigInt(line().replace(/L$/, ""));
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: // FLOAT (text)
        stack.push(parseFloat(line()));
        break;
      // ---- strings and bytes
      case 0x58: // BINUNICODE
        stack.push(str(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(take(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text)
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_m, h) => String.fromCharCode(parseInt(h, 16))));
        break;
      case 0x54: // BINSTRING (Python 2 str; decoded as latin-1 like encoding="latin1")
        stack.push(latin1.decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x53: { // STRING (quoted text)
        const s = line();
        stack.push(s.slice(1, -1));
        break;
      }
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()).slice());
        break;
      // ---- containers
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail("APPEND to something that is not a list");
        (l as unknown[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail("APPENDS to something that is not a list");
        (l as unknown[]).push(...items);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail("ADDITEMS to something that is not a set");
        for (const x of items) (s as Set<unknown>).add(key(x));
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark().map(key)));
        break;
      // ---- memo
      case 0x70: // PUT
        memo.set(Number(line()), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const i = op === 0x67 ? Number(line()) : op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo entry ${i} is undefined`);
        stack.push(memo.get(i));
        break;
      }
      // ---- globals and calls (allow-list only)
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        stack.push(call(callable, args));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args); only OrderedDict makes sense here
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PyGlobal) || cls.name !== "collections.OrderedDict") {
          fail(`NEWOBJ of ${cls instanceof PyGlobal ? cls.name : "a non-class"} refused`);
        }
        stack.push(call(cls, args));
        break;
      }
      case 0x62: { // BUILD: state for the object below; kept aside for dicts (e.g. a state_dict's `_metadata`)
        const state = pop();
        const obj = top();
        if (obj instanceof Map) {
          Object.defineProperty(obj, "pyState", { value: state, enumerable: false, configurable: true });
        } else if (obj instanceof TorchTensor || obj instanceof NumpyDType) {
          // A tensor's python state (a parameter subclass's attributes) or a dtype's (byte order, flags): ignored.
        } else fail("BUILD on an object that is not a dict or tensor refused");
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail("persistent id without a persistent_load (not a torch checkpoint?)");
        stack.push(opts.persistentLoad!(pid, opAt));
        break;
      }
      case 0x50: { // PERSID (text id)
        const pid = line();
        if (!opts.persistentLoad) fail("persistent id without a persistent_load");
        stack.push(opts.persistentLoad!(pid, opAt));
        break;
      }
      case 0x69: // INST
      case 0x6f: // OBJ
      case 0x92: // NEWOBJ_EX
        fail(`opcode ${String.fromCharCode(op)} (instantiates an arbitrary class) refused`);
        break;
      case 0x82:
      case 0x83:
      case 0x84:
        fail("extension registry opcodes (EXT1/2/4) refused");
        break;
      case 0x97:
      case 0x98:
        fail("out-of-band buffers (protocol 5) are not supported");
        break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, "0")} (corrupt file or not a pickle)`);
    }
  }
}
