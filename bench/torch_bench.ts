/**
 * The native torch backend against PyTorch, measured in the same run (issue 10, Benchmark):
 *
 * - CPU: train samples/s of abinet_vision tiny @32 and full @8 on `torch-cpu` vs tools/torch_baseline.py's
 *   mirror of the same network, with the same threads. Goal ≥ 0.8×.
 * - GPU (when the libtorch has CUDA and a GPU is visible): full ABINet-Vision at batch 32, 128, 384 and
 *   ConCLR-Vision at 128 on `torch-cuda` vs PyTorch CUDA fp32 on the same card (ConCLR's reference: the mirror
 *   trained on its three views at once). Goal ≥ 0.5× at batch 128. Without a GPU it says so and skips.
 *
 * Each strata step is the train stage's: forward + backward + global-norm clipping + Adam + one host read.
 * STRATA_BENCH_STEPS (default 3 on the CPU, 10 on the GPU) timed steps after warm-up; medians.
 * `tools/gpu_bench.sh` runs this file on a GPU machine given only the repository (see its header).
 */
import * as tf from "@tensorflow/tfjs";
import { fileURLToPath } from "node:url";
import "../models/mod.ts";
import { activateTorch, torchBackend } from "../backend/torch/mod.ts";
import { buildShim, currentBuild } from "../backend/torch/build.ts";
import { getModelFamily, type Recognizer } from "../models/recognizer.ts";
import { Adam } from "../training/adam.ts";
import { makeTrainStep } from "../training/loop.ts";
import { syntheticBatch } from "../training/test_data.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function build(family: string, preset: string): Recognizer {
  const f = getModelFamily(family);
  return f.create(f.config.parse({ preset }, []), 1, 37);
}

/** Kernels launched per training step (counted once, on a warm step). */
let kernelsPerStep = 0;

async function strataSpeed(model: Recognizer, batch: number, steps: number, warmup: number): Promise<number> {
  const optimizer = new Adam(model.weights);
  const step = makeTrainStep(model, optimizer, 20, 1);
  const c = model.config as Record<string, number>;
  const times: number[] = [];
  const eng = tf.engine() as unknown as { runKernelFunc: (p: unknown) => unknown };
  try {
    const b = syntheticBatch(0, { batchSize: batch, height: c.image_height, width: c.image_width });
    for (let s = 0; s < steps + warmup; s++) {
      let count = 0;
      const original = eng.runKernelFunc;
      if (s === warmup - 1) {
        eng.runKernelFunc = function (this: unknown, p: unknown) {
          count++;
          return original.call(this, p);
        };
      }
      const t = performance.now();
      await step(b, s, 1e-4);
      if (s === warmup - 1) {
        eng.runKernelFunc = original;
        kernelsPerStep = count;
      }
      const seconds = (performance.now() - t) / 1000;
      if (s >= warmup) times.push(seconds);
      if (Deno.env.get("STRATA_BENCH_VERBOSE")) console.log(`  step ${s + 1}: ${seconds.toFixed(3)} s`);
    }
  } finally {
    optimizer.dispose();
  }
  return batch / median(times);
}

interface TorchResult {
  seconds: number;
  torch: string;
  gpu?: string;
  max_memory_bytes?: number;
  skipped?: string;
}

async function pytorchSpeed(
  model: Recognizer,
  batch: number,
  o: { steps: number; device: "cpu" | "cuda"; threads?: number; views?: number },
): Promise<TorchResult | undefined> {
  const script = fileURLToPath(new URL("../tools/torch_baseline.py", import.meta.url));
  const c = model.config as Record<string, number & number[]>;
  const spec = {
    batch,
    height: c.image_height,
    width: c.image_width,
    widths: c.stage_channels,
    blocks: c.stage_blocks,
    strides: c.stage_strides,
    stem: c.stem_channels,
    dModel: c.d_model,
    heads: c.nhead,
    ffn: c.ffn,
    layers: c.num_layers,
    unet: c.attention_channels,
    positions: c.max_length + 1,
    classes: 37,
    steps: o.steps,
    warmup: o.device === "cuda" ? 3 : 1,
    device: o.device,
    views: o.views ?? 1,
    ...(o.threads ? { threads: o.threads } : {}),
  };
  const python = await pythonWithTorch();
  try {
    const r = await new Deno.Command(python, { args: [script, "train-step", JSON.stringify(spec)], stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(r.stdout).trim().split("\n").pop() ?? "";
    if (r.code !== 0) {
      console.log(`PyTorch reference failed: ${new TextDecoder().decode(r.stderr).trim().split("\n").pop()}`);
      return undefined;
    }
    const parsed = JSON.parse(text) as TorchResult;
    if (parsed.skipped) {
      console.log(`PyTorch reference skipped: ${parsed.skipped}`);
      return undefined;
    }
    return parsed;
  } catch (e) {
    console.log(`PyTorch reference not run: ${(e as Error).message}`);
    return undefined;
  }
}

let pythonFound: string | undefined;

/** $STRATA_PYTHON, else the first of python3 and /usr/bin/python3 (Debian's python3-torch) that imports torch. */
async function pythonWithTorch(): Promise<string> {
  if (pythonFound) return pythonFound;
  const env = Deno.env.get("STRATA_PYTHON");
  if (env) return (pythonFound = env);
  for (const candidate of ["python3", "/usr/bin/python3"]) {
    try {
      const r = await new Deno.Command(candidate, { args: ["-c", "import torch"], stderr: "null" }).output();
      if (r.code === 0) return (pythonFound = candidate);
    } catch {
      // not installed
    }
  }
  return (pythonFound = "python3");
}

type Row = [string, string, string, string, string, string];

async function measure(
  label: string,
  family: string,
  preset: string,
  batch: number,
  o: { steps: number; warmup: number; device: "cpu" | "cuda"; threads?: number; views?: number },
): Promise<Row> {
  const model = build(family, preset);
  try {
    let ours: number | undefined;
    try {
      ours = await strataSpeed(model, batch, o.steps, o.warmup);
    } catch (e) {
      console.log(`${label}: strata failed: ${(e as Error).message}`);
    }
    const mem = torchBackend()?.libtorchMemory();
    const ref = await pytorchSpeed(model, batch, o);
    // Samples of the batch per second: the reference trains its views at once, as ConCLR does.
    const theirs = ref ? batch / ref.seconds : undefined;
    const ratio = ours !== undefined && theirs !== undefined ? `${(ours / theirs).toFixed(2)}×` : "–";
    const memCell = o.device === "cuda" && mem
      ? `${(mem.cudaPeakBytes / 2 ** 30).toFixed(1)} / ${((ref?.max_memory_bytes ?? 0) / 2 ** 30).toFixed(1)}`
      : "–";
    return [
      label,
      String(batch),
      ours === undefined ? "failed" : ours.toFixed(1),
      theirs === undefined ? "–" : theirs.toFixed(1),
      ratio,
      `${kernelsPerStep}${o.device === "cuda" ? `; GiB peak strata / PyTorch ${memCell}` : ""}`,
    ];
  } finally {
    model.dispose();
  }
}

function table(title: string, rows: Row[]): void {
  const head = ["model", "batch", "strata torch samples/s", "PyTorch samples/s", "ratio", "kernels/step"];
  console.log(`\n${title}\n| ${head.join(" | ")} |\n|${head.map(() => " --- ").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}

/**
 * The CUDA kernels' numbers against the CPU's: abinet_vision tiny (dropout off, TF32 off) trained 5 steps on
 * torch-cuda and on torch-cpu from the same initial weights: the loss curve, and the first update
 * (weights after step 1 minus the initial ones) as relative L2 over all weights and for the worst tensor. The
 * update, not the weights' max difference, is the measure: Adam's first step moves every weight by ≈ lr·sign(g),
 * so a zero-initialised bias whose gradient is round-off noise can flip sign between devices.
 */
async function cudaParity(): Promise<string> {
  const run = async () => {
    const f = getModelFamily("abinet_vision");
    const model = f.create(f.config.parse({ preset: "tiny", dropout: 0 }, []), 3, 37);
    const optimizer = new Adam(model.weights);
    const step = makeTrainStep(model, optimizer, 20, 1);
    const read = () =>
      Promise.all([...model.weights].map(async ([n, w]) => [n, (await w.data()) as Float32Array] as const));
    const initial = await read();
    const losses: number[] = [];
    let after: (readonly [string, Float32Array])[] = [];
    for (let s = 0; s < 5; s++) {
      losses.push((await step(syntheticBatch(s, { batchSize: 8, height: 32, width: 128 }), s, 1e-3)).loss);
      if (s === 0) after = await read();
    }
    optimizer.dispose();
    model.dispose();
    return { losses, initial, after };
  };
  await activateTorch("cuda", { tf32: "off" });
  const gpu = await run();
  await activateTorch("cpu");
  const cpu = await run();
  let num = 0, den = 0, worst = { name: "", rel: 0 }, initDiff = 0;
  cpu.after.forEach(([name, w], k) => {
    let n = 0, d = 0;
    for (let i = 0; i < w.length; i++) {
      const dc = w[i] - cpu.initial[k][1][i], dg = gpu.after[k][1][i] - gpu.initial[k][1][i];
      n += (dc - dg) ** 2;
      d += dc ** 2;
      initDiff = Math.max(initDiff, Math.abs(cpu.initial[k][1][i] - gpu.initial[k][1][i]));
    }
    num += n, den += d;
    const rel = Math.sqrt(n / Math.max(d, 1e-30));
    if (rel > worst.rel) worst = { name, rel };
  });
  const worstLoss = Math.max(...cpu.losses.map((l, i) => Math.abs(l - gpu.losses[i]) / Math.abs(l)));
  return `CUDA vs CPU (abinet_vision tiny, batch 8, TF32 off): losses ${
    gpu.losses.map((l) => l.toFixed(5)).join(", ")
  } vs ${cpu.losses.map((l) => l.toFixed(5)).join(", ")}; loss curve max relative difference ` +
    `${worstLoss.toExponential(1)}; first update relative L2 ${Math.sqrt(num / den).toExponential(1)} over all ` +
    `weights, worst tensor ${worst.name} ${worst.rel.toExponential(1)}; initial weights max difference ${initDiff}`;
}

export async function main(): Promise<void> {
  if (Deno.env.get("STRATA_BUILD_SHIM") === "1" && !(await currentBuild())) {
    const r = await buildShim((l) => console.log(`setup: ${l}`));
    if (!r.ok) console.log(`shim build failed: ${r.reason}`);
  }
  const build = await currentBuild();
  if (!build) {
    console.log("torch bench skipped: the libtorch shim is not built (`deno task setup` with libtorch installed)");
    return;
  }
  const only = Deno.env.get("STRATA_TORCH_BENCH") ?? "cpu,gpu";
  const threads = navigator.hardwareConcurrency;
  if (only.includes("cpu")) {
    const info = await activateTorch("cpu", { threads });
    const steps = Number(Deno.env.get("STRATA_BENCH_STEPS") ?? 3);
    console.log(`torch-cpu: libtorch ${info.libtorch}, ${info.threads} threads (PyTorch reference: same threads)`);
    table("CPU, 32×128 input (goal ≥ 0.8× PyTorch)", [
      await measure("abinet_vision tiny", "abinet_vision", "tiny", 32, { steps, warmup: 1, device: "cpu", threads }),
      await measure("abinet_vision full", "abinet_vision", "full", 8, { steps, warmup: 1, device: "cpu", threads }),
    ]);
  }
  if (only === "parity") {
    await activateTorch("cuda");
    console.log(await cudaParity());
    return;
  }
  if (only.includes("gpu")) {
    let info;
    try {
      info = await activateTorch("cuda");
    } catch (e) {
      console.log(`\nGPU part skipped: ${(e as Error).message}`);
      return;
    }
    const steps = Number(Deno.env.get("STRATA_BENCH_STEPS") ?? 10);
    try {
      console.log(`\n${await cudaParity()}`);
    } catch (e) {
      console.log(`\nCUDA parity check failed: ${(e as Error).message}`);
    }
    info = await activateTorch("cuda");
    console.log(
      `\ntorch-cuda: libtorch ${info.libtorch} on ${info.device}, TF32 matmul ${info.tf32Matmul}, conv ${info.tf32Conv}` +
        " (PyTorch reference: the same TF32 defaults, cudnn.benchmark on)",
    );
    const rows: Row[] = [];
    // Each row is printed as it is measured, so a run cut short by a time limit still shows it.
    const row = async (label: string, family: string, preset: string, batch: number, views = 1) => {
      rows.push(await measure(label, family, preset, batch, { steps, warmup: 3, device: "cuda", views }));
      console.log(`| ${rows[rows.length - 1].join(" | ")} |`);
    };
    // The goal's batch first.
    const batches = (Deno.env.get("STRATA_GPU_BATCHES") ?? "128,32,384").split(",").filter(Boolean).map(Number);
    for (const batch of batches) await row("abinet_vision full", "abinet_vision", "full", batch);
    // The size experiments/conclr_vs_abinet_gpu.yaml trains (tiny at 128), for its wall-time estimate.
    if (Deno.env.get("STRATA_GPU_TINY") !== "0") await row("abinet_vision tiny", "abinet_vision", "tiny", 128);
    // STRATA_GPU_CONCLR: the ConCLR-Vision presets to measure at 128 (default full; 0 for none).
    const conclr = Deno.env.get("STRATA_GPU_CONCLR") ?? "full";
    for (const preset of conclr === "0" ? [] : conclr.split(",")) {
      await row(`conclr_vision ${preset} (3 views)`, "conclr_vision", preset, 128, 3);
    }
    table("GPU, 32×128 input, fp32 (goal ≥ 0.5× PyTorch at batch 128)", rows);
  }
}

if (import.meta.main) await main();
