/**
 * The backend part of the train / evaluate stage keys, computed without
 * loading tfjs.
 *
 * The engine asks every stage for its environment on every run, cached or
 * not, and a real backend selection (import tfjs, run a training step on each
 * candidate) takes seconds. So the result of the last real selection on this
 * machine is remembered in `.strata/backend-probe.json`, under a signature of
 * what could change it: the host, Deno's version, the tfjs version and which
 * optional tfjs-node packages are installed. A missing or stale record runs
 * the real selection once, in a child process: probing switches tfjs's
 * process-wide backend, which must never happen under a stage that is
 * training in this process. Every real selection (training/backend.ts)
 * rewrites the record, so a run that ends up on another backend than planned
 * corrects the keys of the next plan.
 */
import { join } from "node:path";

export interface BackendFingerprint {
  backend: string;
  tfjs: string;
  /** torch only: the device ("cpu", "cuda:0"), libtorch version and TF32 settings (they change the numbers). */
  device?: string;
  libtorch?: string;
  tf32?: string;
}

interface ProbeRecord {
  signature: string;
  choices: Record<string, BackendFingerprint>;
}

const OPTIONAL_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];

function stateDir(): string {
  const cache = Deno.env.get("STRATA_CACHE");
  return cache ? join(cache, "..") : join(Deno.cwd(), ".strata");
}

function recordPath(): string {
  return join(stateDir(), "backend-probe.json");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The installed tfjs version, read from its package.json (no import). */
export async function tfjsVersion(): Promise<string> {
  const url = new URL("../node_modules/@tensorflow/tfjs-core/package.json", import.meta.url);
  try {
    return JSON.parse(await Deno.readTextFile(url)).version as string;
  } catch {
    return "unknown";
  }
}

async function machineSignature(): Promise<string> {
  const installed: string[] = [];
  for (const pkg of OPTIONAL_PACKAGES) {
    if (await exists(new URL(`../node_modules/${pkg}/package.json`, import.meta.url).pathname)) installed.push(pkg);
  }
  // The libtorch shim build (rebuilt when its source or libtorch changes) and the TF32 choice change what
  // torch is and computes.
  const { currentBuild } = await import("../backend/torch/build.ts");
  const shim = (await currentBuild())?.sourceHash ?? "none";
  const tf32 = Deno.env.get("STRATA_TORCH_TF32") ?? "pytorch";
  return JSON.stringify([Deno.hostname(), Deno.version.deno, await tfjsVersion(), installed, shim, tf32]);
}

async function readRecord(): Promise<ProbeRecord | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(recordPath())) as ProbeRecord;
  } catch {
    return undefined;
  }
}

/** Remembers a real selection (called by training/backend.ts). */
export async function rememberSelection(force: string | undefined, chosen: BackendFingerprint): Promise<void> {
  const signature = await machineSignature();
  const previous = await readRecord();
  const record: ProbeRecord = {
    signature,
    choices: { ...(previous?.signature === signature ? previous.choices : {}), [force ?? "auto"]: chosen },
  };
  try {
    await Deno.mkdir(stateDir(), { recursive: true });
    const tmp = `${recordPath()}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(record, null, 2) + "\n");
    await Deno.rename(tmp, recordPath());
  } catch {
    // A read-only project folder only costs a re-probe next time.
  }
}

/** The backend a train/evaluate stage will run on, and the tfjs version: cheap after the first call. */
export async function backendFingerprint(force?: string): Promise<BackendFingerprint> {
  const record = await readRecord();
  const known = record?.signature === (await machineSignature()) ? record.choices[force ?? "auto"] : undefined;
  if (known) return known;
  await probeInChild(force);
  const probed = (await readRecord())?.choices[force ?? "auto"];
  if (!probed) throw new Error(`backend probe${force ? ` for "${force}"` : ""} left no record at ${recordPath()}`);
  return probed;
}

const probes = new Map<string, Promise<void>>();

/** Runs training/probe_backend.ts once per `force` value at a time (stages ask concurrently). */
function probeInChild(force: string | undefined): Promise<void> {
  const key = force ?? "auto";
  let pending = probes.get(key);
  if (!pending) {
    pending = (async () => {
      const script = new URL("./probe_backend.ts", import.meta.url).pathname;
      const args = ["run", "-A", script, ...(force ? [force] : [])];
      const { code, stderr } = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "piped" })
        .output();
      if (code !== 0) throw new Error(new TextDecoder().decode(stderr).trim() || `backend probe exited with ${code}`);
    })();
    probes.set(key, pending);
    pending.finally(() => probes.delete(key)).catch(() => {});
  }
  return pending;
}
