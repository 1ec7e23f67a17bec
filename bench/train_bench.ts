/**
 * Training / inference benchmark of the `abinet_vision` family at 32×128 (issue 5, Benchmark):
 * - training samples/s (the train stage's step: forward + backward + global-norm clipping + Adam) for the
 *   `tiny` and `full` presets on the selected backend (STRATA_BACKEND forces one);
 * - the same-shaped model trained by PyTorch on the CPU through tools/torch_baseline.py (bench/train_step_bench.ts
 *   `torchStep`), as a ratio; skipped visibly when the script or PyTorch is absent;
 * - inference latency per image at batch 1 and 64;
 * - parameter count (full: checked against the official BaseVision's 23,547,461 trainable parameters).
 *
 * STRATA_BENCH_STEPS (default 2) timed steps after one warm-up; the median is reported.
 */
import * as tf from "@tensorflow/tfjs";
import { fileURLToPath } from "node:url";
import "../models/mod.ts";
import { getModelFamily, type Recognizer } from "../models/recognizer.ts";
import { Adam } from "../training/adam.ts";
import { prepareBackend } from "../training/backend.ts";
import { makeTrainStep } from "../training/loop.ts";
import { syntheticBatch } from "../training/test_data.ts";

/** Trainable parameters of the official ABINet BaseVision (fixtures/abinet_vision manifest without BN statistics, num_batches_tracked and pe buffers). */
export const OFFICIAL_FULL_PARAMETERS = 23_547_461;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function build(preset: "tiny" | "full"): Recognizer {
  const family = getModelFamily("abinet_vision");
  return family.create(family.config.parse({ preset }, []), 1, 37);
}

async function trainSpeed(model: Recognizer, batch: number, steps: number): Promise<number> {
  const optimizer = new Adam(model.weights);
  const step = makeTrainStep(model, optimizer, 20, 1);
  const times: number[] = [];
  try {
    for (let s = 0; s <= steps; s++) {
      const b = syntheticBatch(s, { batchSize: batch, height: 32, width: 128 });
      const t = performance.now();
      await step(b, s, 1e-4);
      if (s > 0) times.push((performance.now() - t) / 1000);
    }
  } finally {
    optimizer.dispose();
  }
  return batch / median(times);
}

async function latency(model: Recognizer, batch: number, repeats: number): Promise<number> {
  const x = tf.randomUniform([batch, 32, 128, 3], -1, 1, "float32", 3) as tf.Tensor4D;
  const times: number[] = [];
  try {
    for (let r = 0; r <= repeats; r++) {
      const t = performance.now();
      const { logits } = model.predict(x);
      await logits.data();
      logits.dispose();
      if (r > 0) times.push((performance.now() - t) / 1000);
    }
  } finally {
    x.dispose();
  }
  return median(times) / batch;
}

async function torchSpeed(model: Recognizer, batch: number, steps: number): Promise<number | undefined> {
  const script = fileURLToPath(new URL("../tools/torch_baseline.py", import.meta.url));
  try {
    await Deno.stat(script);
  } catch {
    console.log(`PyTorch baseline skipped: ${script} does not exist`);
    return undefined;
  }
  const c = model.config as Record<string, number & number[]>;
  const { torchStep } = await import("./train_step_bench.ts");
  const r = await torchStep({
    batch,
    height: 32,
    width: 128,
    widths: c.stage_channels,
    blocks: c.stage_blocks,
    strides: c.stage_strides,
    stem: c.stem_channels,
    dModel: c.d_model,
    heads: c.nhead,
    ffn: c.ffn,
    layers: c.num_layers,
    unet: c.attention_channels,
    positions: 26,
    classes: 37,
  }, steps);
  return r ? batch / r.seconds : undefined;
}

const fmt = (x: number | undefined, digits: number) => (x === undefined ? "failed" : x.toFixed(digits));

/** Runs one measurement; a failure is printed and leaves a "failed" cell instead of ending the benchmark. */
async function attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    console.log(`${what} failed: ${(e as Error).message}`);
    return undefined;
  }
}

export async function main(): Promise<void> {
  const steps = Number(Deno.env.get("STRATA_BENCH_STEPS") ?? 2);
  const backend = await prepareBackend(Deno.env.get("STRATA_BACKEND") || undefined);
  console.log(`backend ${backend.name}, tfjs ${backend.tfjsVersion}; 32×128 input, ${steps} timed steps (median)\n`);
  const rows: string[][] = [];
  for (const [preset, batch] of [["tiny", 32], ["full", 8]] as const) {
    const model = build(preset);
    try {
      const params = [...model.weights.values()].reduce((a, v) => a + v.size, 0);
      const speed = await attempt(`${preset} training`, () => trainSpeed(model, batch, steps));
      const torch = await attempt(`${preset} PyTorch`, () => torchSpeed(model, batch, Math.max(3, steps)));
      const l1 = await attempt(`${preset} latency @1`, () => latency(model, 1, 3));
      // tfjs-wasm has a 4 GB heap and the full model's eval forward keeps its intermediates until the end of
      // its tidy: batch 64 overflows it (and a failed allocation leaves the backend unusable), so 16 there.
      const big = preset === "full" && backend.name === "wasm" ? 16 : 64;
      if (big !== 64) console.log(`full latency measured at batch ${big}: batch 64 exceeds the wasm heap`);
      const l64 = await attempt(`${preset} latency @${big}`, () => latency(model, big, 1));
      rows.push([
        preset,
        params.toLocaleString("en-US") +
        (preset === "full"
          ? (params === OFFICIAL_FULL_PARAMETERS ? " (= official)" : ` (official ${OFFICIAL_FULL_PARAMETERS})`)
          : ""),
        String(batch),
        fmt(speed, 2),
        torch === undefined || speed === undefined
          ? (torch === undefined ? "skipped" : fmt(torch, 2))
          : `${torch.toFixed(2)} (tfjs ${(speed / torch).toFixed(2)}×)`,
        fmt(l1 === undefined ? undefined : l1 * 1000, 1),
        fmt(l64 === undefined ? undefined : l64 * 1000, 1) + (big !== 64 ? ` (@${big})` : ""),
      ]);
    } finally {
      model.dispose();
    }
  }
  const head = ["preset", "parameters", "batch", "train samples/s", "PyTorch CPU samples/s", "ms/img @1", "ms/img @64"];
  console.log(`| ${head.join(" | ")} |\n|${head.map(() => " --- ").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}

if (import.meta.main) await main();
