/**
 * `TorchBackend`: a tfjs `KernelBackend` whose tensors live in libtorch memory (CPU or CUDA) as handles of the
 * C++ shim. tfjs keeps shapes, dtypes and autodiff; the kernels (kernels/*.ts) call ATen through the shim.
 */
import * as tf from "@tensorflow/tfjs";
import { DTYPE_CODE, type Handle, handleArray, type Shim, type ShimDtype } from "./ffi.ts";

type DataId = object;

interface Entry {
  handle: Handle;
  shape: number[];
  dtype: ShimDtype;
  refCount: number;
}

export interface TorchDeviceInfo {
  /** "cpu" or "cuda:0". */
  device: string;
  /** libtorch's version, e.g. "1.13.1" or "2.11.0+cu130". */
  libtorch: string;
  threads: number;
  /** TF32 for cuBLAS matmuls / cuDNN convolutions (CUDA only; false on the CPU). */
  tf32Matmul: boolean;
  tf32Conv: boolean;
}

function shimDtype(dtype: tf.DataType): ShimDtype {
  if (dtype === "float32" || dtype === "int32" || dtype === "bool") return dtype;
  throw new Error(`torch backend: dtype ${dtype} is not supported (float32, int32 and bool are)`);
}

function byteSize(dtype: ShimDtype): number {
  return dtype === "bool" ? 1 : 4;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function hostArray(dtype: ShimDtype, n: number): Float32Array | Int32Array | Uint8Array {
  return dtype === "float32" ? new Float32Array(n) : dtype === "int32" ? new Int32Array(n) : new Uint8Array(n);
}

/** Typed host view of `values` in the shim's element type (bool as 0/1 bytes). */
function toHost(values: tf.BackendValues, dtype: ShimDtype): Float32Array | Int32Array | Uint8Array {
  if (dtype === "float32") {
    return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  }
  if (dtype === "int32") return values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
  if (values instanceof Uint8Array) return values;
  return Uint8Array.from(values as ArrayLike<number>, (v) => (v ? 1 : 0));
}

const EMPTY = new Uint8Array(8);

export class TorchBackend extends tf.KernelBackend {
  private readonly data: tf.DataStorage<Entry>;
  private readonly dataMover = tf.engine();

  constructor(readonly shim: Shim, readonly info: TorchDeviceInfo) {
    super();
    this.data = new tf.DataStorage<Entry>(this, this.dataMover);
  }

  /** Uploads host values into a new libtorch tensor. */
  upload(values: tf.BackendValues | null, shape: number[], dtype: tf.DataType): Handle {
    const d = shimDtype(dtype);
    const n = sizeOf(shape);
    const host = values === null ? hostArray(d, n) : toHost(values, d);
    if (host.length !== n) {
      throw new Error(`torch backend: ${host.length} values for shape [${shape}] (${n} elements)`);
    }
    const bytes = n === 0 ? EMPTY : new Uint8Array(host.buffer, host.byteOffset, host.byteLength);
    const s = this.shim;
    return s.check("upload", s.sym.st_from_host(bytes, DTYPE_CODE[d], Int32Array.from(shape), shape.length));
  }

  override write(values: tf.BackendValues | null, shape: number[], dtype: tf.DataType): DataId {
    const dataId = {};
    this.data.set(dataId, { handle: this.upload(values, shape, dtype), shape, dtype: shimDtype(dtype), refCount: 1 });
    return dataId;
  }

  override move(dataId: DataId, values: tf.BackendValues, shape: number[], dtype: tf.DataType, refCount: number) {
    this.data.set(dataId, { handle: this.upload(values, shape, dtype), shape, dtype: shimDtype(dtype), refCount });
  }

  /** Registers a kernel's output handle as a tensor. */
  output(handle: Handle, shape: number[], dtype: tf.DataType): tf.TensorInfo {
    const dataId = {};
    this.data.set(dataId, { handle, shape, dtype: shimDtype(dtype), refCount: 1 });
    return { dataId, shape, dtype };
  }

  /** The handle of a kernel input (moved here from another backend when needed). */
  handle(t: tf.TensorInfo): Handle {
    return this.data.get(t.dataId).handle;
  }

  /**
   * Global-norm clipping and Adam update number `step` over all weights in one shim call, in place on the
   * weights' and moments' storage (the shim copies first any storage that another tensor shares). Returns the
   * gradient norm before clipping as a scalar tensor.
   */
  adamClip(
    params: readonly tf.Tensor[],
    grads: readonly tf.Tensor[],
    expAvg: readonly tf.Tensor[],
    expAvgSq: readonly tf.Tensor[],
    o: { lr: number; beta1: number; beta2: number; epsilon: number; step: number; maxNorm: number },
  ): tf.Scalar {
    const hs = (ts: readonly tf.Tensor[]) => handleArray(ts.map((t) => this.handle(t)));
    const hh = this.shim.sym.st_adam_clip(
      hs(params),
      hs(grads),
      hs(expAvg),
      hs(expAvgSq),
      params.length,
      o.lr,
      o.beta1,
      o.beta2,
      o.epsilon,
      BigInt(o.step),
      o.maxNorm,
    );
    const info = this.output(this.shim.check("adam", hh), [], "float32");
    return tf.engine().makeTensorFromTensorInfo(info, this) as tf.Scalar;
  }

  override readSync(dataId: DataId): tf.BackendValues {
    const e = this.data.get(dataId);
    const out = hostArray(e.dtype, sizeOf(e.shape));
    const bytes = out.length === 0 ? EMPTY : new Uint8Array(out.buffer);
    this.shim.checkStatus("read", this.shim.sym.st_to_host(e.handle, bytes, BigInt(out.byteLength)));
    return out;
  }

  override async read(dataId: DataId): Promise<tf.BackendValues> {
    const e = this.data.get(dataId);
    const out = hostArray(e.dtype, sizeOf(e.shape));
    if (out.length === 0) return out;
    // A second handle keeps the tensor alive while the copy runs off the event loop (the tensor may be
    // disposed meanwhile).
    const ref = this.shim.check("read", this.shim.sym.st_ref(e.handle));
    try {
      const status = await this.shim.sym.st_to_host_async(ref, new Uint8Array(out.buffer), BigInt(out.byteLength));
      this.shim.checkStatus("read", status);
    } finally {
      this.shim.sym.st_free(ref);
    }
    return out;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    if (!this.data.has(dataId)) return true;
    const e = this.data.get(dataId);
    e.refCount--;
    if (!force && e.refCount > 0) return false;
    this.shim.sym.st_free(e.handle);
    this.data.delete(dataId);
    return true;
  }

  override refCount(dataId: DataId): number {
    return this.data.has(dataId) ? this.data.get(dataId).refCount : 0;
  }

  override incRef(dataId: DataId): void {
    this.data.get(dataId).refCount++;
  }

  override numDataIds(): number {
    return this.data.numDataIds();
  }

  /** libtorch-side memory: live handles, bytes of their storages, CUDA allocator bytes now and at peak. */
  libtorchMemory(): { handles: number; bytes: number; cudaBytes: number; cudaPeakBytes: number } {
    const out = new Float64Array(4);
    this.shim.checkStatus("memory", this.shim.sym.st_memory(out));
    return { handles: out[0], bytes: out[1], cudaBytes: out[2], cudaPeakBytes: out[3] };
  }

  override memory(): { unreliable: boolean; reasons?: string[] } & Record<string, unknown> {
    const m = this.libtorchMemory();
    return {
      unreliable: true,
      reasons: ["views share storage; bytes count each distinct storage once"],
      numBytesInLibtorch: m.bytes,
      numLibtorchHandles: m.handles,
      numBytesInGPU: m.cudaBytes,
      numBytesInGPUPeak: m.cudaPeakBytes,
    };
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<tf.TimingInfo> {
    const start = performance.now();
    f();
    this.shim.checkStatus("synchronize", this.shim.sym.st_synchronize());
    return { kernelMs: performance.now() - start } as tf.TimingInfo;
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    // Handles are freed with their tensors; the shim stays loaded for the process.
  }
}
