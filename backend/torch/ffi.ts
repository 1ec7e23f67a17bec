/**
 * The Deno FFI binding of the C++ shim (shim.h). `openShim(path)` loads the library built by build.ts and
 * returns typed wrappers that throw `TorchError` with the shim's message when a call fails.
 */

/** Tensor handle: an owned `at::Tensor*` inside the shim. */
export type Handle = Deno.PointerObject;

export const DTYPE_CODE = { float32: 0, int32: 1, bool: 2 } as const;
export type ShimDtype = keyof typeof DTYPE_CODE;

const SYMBOLS = {
  st_last_error: { parameters: [], result: "pointer" },
  st_version: { parameters: [], result: "pointer" },
  st_abi_version: { parameters: [], result: "i32" },
  st_cuda_available: { parameters: [], result: "i32" },
  st_init: { parameters: ["i32", "i32", "i32", "i32", "i32"], result: "i32" },
  st_device_name: { parameters: [], result: "pointer" },
  st_num_threads: { parameters: [], result: "i32" },
  st_memory: { parameters: ["buffer"], result: "i32" },
  st_synchronize: { parameters: [], result: "i32" },
  st_from_host: { parameters: ["buffer", "i32", "buffer", "i32"], result: "pointer" },
  st_to_host: { parameters: ["pointer", "buffer", "i64"], result: "i32" },
  st_to_host_async: {
    name: "st_to_host",
    parameters: ["pointer", "buffer", "i64"],
    result: "i32",
    nonblocking: true,
  },
  st_ref: { parameters: ["pointer"], result: "pointer" },
  st_free: { parameters: ["pointer"], result: "void" },
  st_unary: { parameters: ["i32", "pointer", "i32"], result: "pointer" },
  st_unary_scalar: { parameters: ["i32", "pointer", "f64", "f64", "i32"], result: "pointer" },
  st_binary: { parameters: ["i32", "pointer", "pointer", "i32"], result: "pointer" },
  st_select: { parameters: ["pointer", "pointer", "pointer"], result: "pointer" },
  st_cast: { parameters: ["pointer", "i32"], result: "pointer" },
  st_fill: { parameters: ["buffer", "i32", "f64", "i32"], result: "pointer" },
  st_range: { parameters: ["f64", "f64", "i64", "i32"], result: "pointer" },
  st_reduce: { parameters: ["i32", "pointer", "buffer", "i32", "i32", "i32"], result: "pointer" },
  st_arg_reduce: { parameters: ["i32", "pointer", "i32"], result: "pointer" },
  st_softmax: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  st_cumsum: { parameters: ["pointer", "i32", "i32", "i32", "i32"], result: "pointer" },
  st_cumprod: { parameters: ["pointer", "i32", "i32", "i32", "i32"], result: "pointer" },
  st_topk: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  st_reshape: { parameters: ["pointer", "buffer", "i32"], result: "pointer" },
  st_transpose: { parameters: ["pointer", "buffer", "i32"], result: "pointer" },
  st_strided_slice: { parameters: ["pointer", "buffer", "buffer", "buffer", "i32"], result: "pointer" },
  st_concat: { parameters: ["buffer", "i32", "i32"], result: "pointer" },
  st_stack: { parameters: ["buffer", "i32", "i32"], result: "pointer" },
  st_unstack: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  st_split: { parameters: ["pointer", "buffer", "i32", "i32", "buffer"], result: "i32" },
  st_tile: { parameters: ["pointer", "buffer", "i32"], result: "pointer" },
  st_pad: { parameters: ["pointer", "buffer", "i32", "f64"], result: "pointer" },
  st_mirror_pad: { parameters: ["pointer", "buffer", "i32", "i32"], result: "pointer" },
  st_reverse: { parameters: ["pointer", "buffer", "i32"], result: "pointer" },
  st_broadcast_to: { parameters: ["pointer", "buffer", "i32"], result: "pointer" },
  st_gather: { parameters: ["pointer", "pointer", "i32", "i32"], result: "pointer" },
  st_gather_nd: { parameters: ["pointer", "pointer"], result: "pointer" },
  st_one_hot: { parameters: ["pointer", "i32", "f64", "f64", "i32"], result: "pointer" },
  st_unsorted_segment_sum: { parameters: ["pointer", "pointer", "i32"], result: "pointer" },
  st_scatter_nd: { parameters: ["pointer", "pointer", "buffer", "i32"], result: "pointer" },
  st_matmul: { parameters: ["pointer", "pointer", "i32", "i32"], result: "pointer" },
  st_fused_matmul: {
    parameters: ["pointer", "pointer", "i32", "i32", "pointer", "i32", "pointer", "f64"],
    result: "pointer",
  },
  st_conv2d: {
    parameters: ["pointer", "pointer", "buffer", "buffer", "buffer", "i32", "pointer", "i32", "pointer", "f64"],
    result: "pointer",
  },
  st_conv2d_backprop_input: {
    parameters: ["pointer", "pointer", "buffer", "buffer", "buffer", "buffer", "i32"],
    result: "pointer",
  },
  st_conv2d_backprop_filter: {
    parameters: ["pointer", "pointer", "buffer", "buffer", "buffer", "buffer", "i32"],
    result: "pointer",
  },
  st_pool2d: { parameters: ["i32", "pointer", "buffer", "buffer", "buffer"], result: "pointer" },
  st_pool2d_grad: { parameters: ["i32", "pointer", "pointer", "buffer", "buffer", "buffer"], result: "pointer" },
  st_resize: {
    parameters: ["pointer", "buffer", "buffer", "i32", "buffer", "buffer", "i32", "i32"],
    result: "pointer",
  },
  st_resize_grad: {
    parameters: ["pointer", "buffer", "buffer", "i32", "buffer", "buffer", "i32", "i32"],
    result: "pointer",
  },
  st_layer_norm: { parameters: ["pointer", "pointer", "pointer", "f64", "buffer"], result: "i32" },
  st_layer_norm_backward: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "buffer"],
    result: "i32",
  },
  st_batch_norm_train: { parameters: ["pointer", "pointer", "pointer", "f64", "buffer"], result: "i32" },
  st_batch_norm_backward: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "buffer"],
    result: "i32",
  },
  st_adam_clip: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "f64", "f64", "f64", "f64", "i64", "f64"],
    result: "pointer",
  },
  st_dropout_mask: { parameters: ["buffer", "i32", "f64", "u64"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

export type ShimSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

export class TorchError extends Error {
  constructor(call: string, message: string) {
    super(`torch backend: ${call} failed: ${message}`);
    this.name = "TorchError";
  }
}

function cString(p: Deno.PointerValue): string {
  return p === null ? "" : new Deno.UnsafePointerView(p).getCString();
}

/** The loaded shim: raw symbols plus helpers that turn failures into TorchError. */
export class Shim {
  readonly sym: ShimSymbols;
  readonly version: string;
  readonly cudaAvailable: boolean;

  constructor(readonly path: string, private readonly lib: Deno.DynamicLibrary<typeof SYMBOLS>) {
    this.sym = lib.symbols;
    this.version = cString(this.sym.st_version());
    this.cudaAvailable = this.sym.st_cuda_available() === 1;
  }

  lastError(): string {
    return cString(this.sym.st_last_error()) || "unknown error";
  }

  /** Throws TorchError when `h` is null (the shim's failure signal). */
  check(call: string, h: Deno.PointerValue): Handle {
    if (h === null) throw new TorchError(call, this.lastError());
    return h;
  }

  checkStatus(call: string, status: number): void {
    if (status !== 0) throw new TorchError(call, this.lastError());
  }

  deviceName(): string {
    return cString(this.sym.st_device_name());
  }

  close(): void {
    this.lib.close();
  }
}

/** Loads the shim library at `path`; throws with the dynamic loader's message when it cannot. */
export function openShim(path: string): Shim {
  const lib = Deno.dlopen(path, SYMBOLS);
  const abi = lib.symbols.st_abi_version();
  if (abi !== 1) {
    lib.close();
    throw new Error(`${path}: shim ABI version ${abi}, this strata expects 1 (rerun \`deno task setup\`)`);
  }
  return new Shim(path, lib);
}

/** A `BigUint64Array` of handle addresses, for array-of-handles parameters. */
export function handleArray(hs: readonly Handle[]): BigUint64Array {
  const out = new BigUint64Array(hs.length);
  for (let i = 0; i < hs.length; i++) out[i] = BigInt(Deno.UnsafePointer.value(hs[i]));
  return out;
}

/** Handles written by the shim into an out-array. */
export function handlesFrom(call: string, shim: Shim, raw: BigUint64Array): Handle[] {
  const out: Handle[] = [];
  for (const v of raw) out.push(shim.check(call, Deno.UnsafePointer.create(v)));
  return out;
}

/** Int32 copy of a shape, axes or attribute list (the shim's array type). */
export function i32(values: readonly number[]): Int32Array {
  return Int32Array.from(values);
}
