/**
 * Run-time backend selection: torch on CUDA (libtorch through strata's shim, backend/torch/) → tensorflow
 * (tfjs-node-gpu, then tfjs-node, when importable) → torch on the CPU → wasm (with strata's kernels,
 * backend/kernels/) → webgpu (when a hardware adapter exists; it trains strata's models slower than wasm) →
 * cpu. A candidate is accepted only after a tiny real training step succeeds on it (conv + dense + softmax
 * cross-entropy, one Adam step: loss finite and weights changed). `force` names one backend ("torch" means
 * torch-cuda, else torch-cpu) and fails clearly when it does not work.
 */
import * as tf from "@tensorflow/tfjs";
import { activateTorch, type TorchDeviceInfo } from "./torch/mod.ts";
import { useWasm, wasmKernelSet } from "./wasm.ts";

// tfjs's console banners ("looks like you are running TensorFlow.js in Node.js") would land in every
// stage log; strata reports the backend it chose itself.
tf.env().set("PROD", true);

export const BACKEND_ORDER = ["torch-cuda", "tensorflow", "torch-cpu", "wasm", "webgpu", "cpu"] as const;
export type BackendName = typeof BACKEND_ORDER[number];
/** Names `force` accepts: the candidates, plus "torch" for the best torch device. */
export const FORCEABLE = [...BACKEND_ORDER, "torch"] as const;

export interface SelectedBackend {
  /** tfjs's name of the backend now current: "torch", "tensorflow", "webgpu", "wasm" or "cpu". */
  name: string;
  tfjsVersion: string;
  /** For torch: the device ("cpu", "cuda:0"), the libtorch version and the TF32 settings. */
  torch?: { device: string; libtorch: string; tf32: string };
  /** What was chosen and why the earlier candidates were not. */
  details: string;
}

export interface SelectOptions {
  /** Use only this backend (a BackendName); throws when it does not work. */
  force?: string;
  /** Receives one line per candidate tried. */
  log?: (line: string) => void;
}

let torchInfo: TorchDeviceInfo | undefined;

function torchFingerprint(info: TorchDeviceInfo): { device: string; libtorch: string; tf32: string } {
  return {
    device: info.device,
    libtorch: info.libtorch,
    tf32: `matmul ${info.tf32Matmul ? "on" : "off"}, conv ${info.tf32Conv ? "on" : "off"}`,
  };
}

/** The part of the environment that changes numerical results: for train/evaluate stage keys. */
export function environmentFingerprint(): { tfjs: string; backend: string; torch?: Record<string, string> } {
  const backend = tf.getBackend();
  if (backend === "torch" && torchInfo) return { tfjs: tf.version.tfjs, backend, torch: torchFingerprint(torchInfo) };
  return { tfjs: tf.version.tfjs, backend };
}

type Attempt = { ok: true; details: string } | { ok: false; reason: string };

async function importable(specifier: string): Promise<boolean> {
  try {
    // A non-literal specifier: the packages are optional (they need a native build and internet to install).
    await import(specifier);
    return true;
  } catch {
    return false;
  }
}

/** The tfjs-node package that imports here (GPU build first), or undefined. */
export async function tensorflowPackage(): Promise<string | undefined> {
  for (const candidate of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    if (await importable(`npm:${candidate}`)) return candidate;
  }
  return undefined;
}

async function activate(name: BackendName): Promise<Attempt> {
  switch (name) {
    case "torch-cuda":
    case "torch-cpu": {
      try {
        torchInfo = await activateTorch(name === "torch-cuda" ? "cuda" : "cpu");
      } catch (e) {
        return { ok: false, reason: (e as Error).message };
      }
      const t = torchFingerprint(torchInfo);
      return {
        ok: true,
        details: `torch (libtorch ${t.libtorch} on ${t.device}, ${torchInfo.threads} threads, TF32 ${t.tf32})`,
      };
    }
    case "tensorflow": {
      const pkg = await tensorflowPackage();
      if (pkg === undefined) {
        return { ok: false, reason: "neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed" };
      }
      if (!(await setBackend("tensorflow"))) {
        return { ok: false, reason: `${pkg} imported but its backend did not initialise` };
      }
      return { ok: true, details: `tensorflow via ${pkg}` };
    }
    case "webgpu": {
      type Adapter = { isFallbackAdapter?: boolean; info?: { isFallbackAdapter?: boolean; description?: string } };
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(o?: object): Promise<Adapter | null> } }).gpu;
      if (gpu === undefined) return { ok: false, reason: "navigator.gpu is not available" };
      let adapter: Adapter | null = null;
      try {
        adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
      } catch (e) {
        return { ok: false, reason: `requestAdapter failed: ${(e as Error).message}` };
      }
      if (adapter === null) return { ok: false, reason: "no WebGPU adapter" };
      const description = adapter.info?.description ?? "unknown adapter";
      if (adapter.isFallbackAdapter === true || adapter.info?.isFallbackAdapter === true) {
        // A software rasteriser (e.g. llvmpipe) on the CPU: slower than wasm.
        return { ok: false, reason: `only a software (fallback) WebGPU adapter: ${description}` };
      }
      await import("@tensorflow/tfjs-backend-webgpu");
      if (!(await setBackend("webgpu"))) return { ok: false, reason: "the webgpu backend did not initialise" };
      return { ok: true, details: `webgpu (${description})` };
    }
    case "wasm": {
      try {
        await useWasm();
      } catch (e) {
        return { ok: false, reason: (e as Error).message };
      }
      return { ok: true, details: `wasm (single-threaded XNNPACK) + strata kernels (${wasmKernelSet()})` };
    }
    case "cpu":
      if (!(await setBackend("cpu"))) return { ok: false, reason: "the cpu backend did not initialise" };
      return { ok: true, details: "cpu (plain JavaScript)" };
  }
}

/**
 * Drops a rejected backend with its data, so that a half-initialised one (a GPU whose training step
 * failed) cannot break the candidates after it: tfjs would otherwise move live tensors through it.
 */
function discard(name: BackendName): void {
  if (name === "wasm" || name === "cpu") return; // cheap to keep, and later candidates may reuse them
  const registered = name.startsWith("torch") ? "torch" : name;
  try {
    if (tf.findBackend(registered) !== null) tf.removeBackend(registered);
  } catch {
    // Removing is best effort: a backend that failed to construct is not registered anyway.
  }
}

async function setBackend(name: string): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    return ok;
  } catch {
    return false;
  }
}

/**
 * One real training step on the current backend: a stride-2 conv, ReLU, a dense
 * layer, softmax cross-entropy, one Adam step. Returns why it failed, or undefined.
 */
export async function smokeTrain(): Promise<string | undefined> {
  const vars: tf.Variable[] = [];
  const optimizer = tf.train.adam(0.01);
  try {
    const w1 = tf.tidy(() => tf.variable(tf.randomNormal([3, 3, 2, 4], 0, 0.5, "float32", 1), true));
    const w2 = tf.tidy(() => tf.variable(tf.randomNormal([4 * 3 * 4, 3], 0, 0.5, "float32", 2), true));
    vars.push(w1, w2);
    // Asynchronous reads: webgpu cannot read synchronously under Deno.
    const before = (await w1.data()).slice();
    const loss = optimizer.minimize(
      () =>
        tf.tidy(() => {
          const x = tf.randomNormal([2, 6, 8, 2], 0, 1, "float32", 3) as tf.Tensor4D;
          const h = tf.relu(tf.conv2d(x, w1 as tf.Tensor4D, 2, "same"));
          const logits = tf.matMul(tf.reshape(h, [2, 4 * 3 * 4]), w2);
          const labels = tf.cast(tf.oneHot(tf.tensor1d([0, 2], "int32"), 3), "float32");
          return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
        }),
      true,
      vars,
    );
    const value = loss ? (await loss.data())[0] : NaN;
    loss?.dispose();
    if (!Number.isFinite(value)) return `the training step's loss is ${value}`;
    const after = await w1.data();
    if (!after.some((v, i) => v !== before[i])) return "the training step did not change the weights";
    return undefined;
  } catch (e) {
    return `the training step failed: ${(e as Error).message}`;
  } finally {
    optimizer.dispose();
    tf.dispose(vars);
  }
}

export async function selectBackend(options: SelectOptions = {}): Promise<SelectedBackend> {
  const log = options.log ?? (() => {});
  let candidates: readonly BackendName[] = BACKEND_ORDER;
  if (options.force !== undefined) {
    if (!(FORCEABLE as readonly string[]).includes(options.force)) {
      throw new Error(
        `backend/select.ts: unknown backend "${options.force}" (choose one of ${FORCEABLE.join(", ")})`,
      );
    }
    candidates = options.force === "torch" ? ["torch-cuda", "torch-cpu"] : [options.force as BackendName];
  }
  const rejected: string[] = [];
  for (const name of candidates) {
    const attempt = await activate(name);
    let reason = attempt.ok ? await smokeTrain() : attempt.reason;
    const tfjsName = name.startsWith("torch") ? "torch" : name;
    if (attempt.ok && reason === undefined && tf.getBackend() !== tfjsName) {
      reason = `tfjs reports backend "${tf.getBackend()}" as current`;
    }
    if (attempt.ok && reason === undefined) {
      log(`backend ${name}: accepted (${attempt.details})`);
      const skipped = rejected.length > 0 ? `; not chosen: ${rejected.join("; ")}` : "";
      const torch = tfjsName === "torch" && torchInfo ? torchFingerprint(torchInfo) : undefined;
      return { name: tfjsName, tfjsVersion: tf.version.tfjs, details: `${attempt.details}${skipped}`, torch };
    }
    log(`backend ${name}: rejected (${reason})`);
    rejected.push(`${name}: ${reason}`);
    discard(name);
  }
  if (options.force !== undefined) {
    throw new Error(`backend/select.ts: the forced backend "${options.force}" does not work: ${rejected.join("; ")}`);
  }
  throw new Error(`backend/select.ts: no tfjs backend works (${rejected.join("; ")})`);
}
