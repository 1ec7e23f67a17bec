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
import { currentBuild } from "../backend/torch/build.ts";
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
      if (s >= warmup) times.push((performance.now() - t) / 1000);
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
  const python = Deno.env.get("STRATA_PYTHON") ?? "python3";
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
    const theirs = ref ? (batch * (o.views ?? 1)) / (o.views ?? 1) / ref.seconds : undefined;
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

export async function main(): Promise<void> {
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
  if (only.includes("gpu")) {
    let info;
    try {
      info = await activateTorch("cuda");
    } catch (e) {
      console.log(`\nGPU part skipped: ${(e as Error).message}`);
      return;
    }
    const steps = Number(Deno.env.get("STRATA_BENCH_STEPS") ?? 10);
    console.log(
      `\ntorch-cuda: libtorch ${info.libtorch} on ${info.device}, TF32 matmul ${info.tf32Matmul}, conv ${info.tf32Conv}` +
        " (PyTorch reference: the same TF32 defaults, cudnn.benchmark on)",
    );
    const rows: Row[] = [];
    for (const batch of [32, 128, 384]) {
      rows.push(
        await measure("abinet_vision full", "abinet_vision", "full", batch, { steps, warmup: 3, device: "cuda" }),
      );
    }
    rows.push(
      await measure("conclr_vision full (3 views)", "conclr_vision", "full", 128, {
        steps,
        warmup: 3,
        device: "cuda",
        views: 3,
      }),
    );
    table("GPU, 32×128 input, fp32 (goal ≥ 0.5× PyTorch at batch 128)", rows);
  }
}

if (import.meta.main) await main();
