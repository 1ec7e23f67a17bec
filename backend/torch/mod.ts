/**
 * The `torch` tfjs backend: strata's kernels over libtorch (ATen) through the C++ shim (shim.cpp, built by
 * `deno task setup`). `activateTorch(device)` loads the shim, initialises the device and makes "torch" the
 * current tfjs backend.
 *
 * Devices: "cuda" (the libtorch has CUDA and a GPU is visible) or "cpu" (as many threads as cores).
 * TF32 follows PyTorch's defaults unless told otherwise: on for cuDNN convolutions, off for matmuls
 * (`STRATA_TORCH_TF32=on|off|pytorch`, or the `tf32` option).
 */
import * as tf from "@tensorflow/tfjs";
import { TorchBackend, type TorchDeviceInfo } from "./backend.ts";
import { currentBuild } from "./build.ts";
import { openShim, type Shim } from "./ffi.ts";
import { registerTorchKernels } from "./kernels/mod.ts";

export { TorchBackend, type TorchDeviceInfo } from "./backend.ts";
export { TORCH_KERNELS } from "./kernels/mod.ts";

export type TorchDevice = "cpu" | "cuda";
export type Tf32Mode = "pytorch" | "on" | "off";

export interface ActivateOptions {
  tf32?: Tf32Mode;
  threads?: number;
}

let shim: Shim | undefined;

/** Loads the shim built by setup (once per process); throws a one-line reason when there is none. */
export async function loadShim(): Promise<Shim> {
  if (shim) return shim;
  const build = await currentBuild();
  if (!build) {
    throw new Error(
      "the libtorch shim is not built: run `deno task setup` (needs g++ and libtorch: Debian `apt-get install " +
        "libtorch-dev`, an installed PyTorch, or STRATA_LIBTORCH=DIR)",
    );
  }
  shim = openShim(build.library);
  return shim;
}

export function tf32Mode(option?: Tf32Mode): Tf32Mode {
  const v = option ?? (Deno.env.get("STRATA_TORCH_TF32") as Tf32Mode | undefined) ?? "pytorch";
  if (v !== "pytorch" && v !== "on" && v !== "off") {
    throw new Error(`STRATA_TORCH_TF32 must be pytorch, on or off (got "${v}")`);
  }
  return v;
}

/** Loads, initialises `device` and makes "torch" the current tfjs backend. */
export async function activateTorch(device: TorchDevice, options: ActivateOptions = {}): Promise<TorchDeviceInfo> {
  const s = await loadShim();
  if (device === "cuda" && !s.cudaAvailable) {
    throw new Error(`libtorch ${s.version} has no CUDA, or no NVIDIA GPU is visible`);
  }
  const mode = tf32Mode(options.tf32);
  const cuda = device === "cuda";
  const tf32Matmul = cuda && mode === "on";
  const tf32Conv = cuda && mode !== "off";
  const threads = options.threads ?? navigator.hardwareConcurrency ?? 1;
  s.checkStatus("init", s.sym.st_init(cuda ? 1 : 0, threads, tf32Matmul ? 1 : 0, tf32Conv ? 1 : 0, cuda ? 1 : 0));
  const info: TorchDeviceInfo = {
    device: s.deviceName(),
    libtorch: s.version,
    threads: s.sym.st_num_threads(),
    tf32Matmul,
    tf32Conv,
  };
  registerTorchKernels();
  if (tf.findBackend("torch") !== null) tf.removeBackend("torch");
  tf.registerBackend("torch", () => new TorchBackend(s, info), 0);
  if (!(await tf.setBackend("torch"))) throw new Error("the torch backend did not initialise");
  await tf.ready();
  return info;
}

/** The active torch backend, or undefined when another backend is current. */
export function torchBackend(): TorchBackend | undefined {
  if (tf.getBackend() !== "torch") return undefined;
  return tf.backend() as unknown as TorchBackend;
}
