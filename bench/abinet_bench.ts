/**
 * Training throughput of the full ABINet (`abinet` family: vision → (BCN → alignment) × 3) at 32×128, against
 * the vision model alone (`abinet_vision`, same vision config) measured in the same run — the ratio is what the
 * language model, the alignment and the iterations cost per training step. Also the BCN alone in its
 * `pretrain_lm` setting (words/s).
 *
 * Presets: `micro` (the ablation's), `tiny` (`STRATA_ABINET_PRESETS=micro,tiny,full` for more; `full` is 36.7 M
 * parameters and slow on wasm). Train steps: forward + backward + global-norm clipping + Adam (the train stage's
 * step). STRATA_BENCH_STEPS (default 2) timed steps after one warm-up, median; STRATA_BACKEND forces a backend.
 */
import "../models/mod.ts";
import { type LanguagePreset, resolveLanguageModel } from "../models/abinet/abinet_config.ts";
import { AbinetLanguageModel } from "../models/abinet/language_model.ts";
import { getModelFamily, type Recognizer } from "../models/recognizer.ts";
import { charsetFor } from "../data/charset.ts";
import { Rng } from "../data/random.ts";
import { mutateSpelling } from "../data/spelling_mutation.ts";
import { englishWords } from "../data/words.ts";
import { Adam } from "../training/adam.ts";
import { prepareBackend } from "../training/backend.ts";
import { makeTrainStep } from "../training/loop.ts";
import { textBatch } from "../training/pretrain_lm_stage.ts";
import { syntheticBatch } from "../training/test_data.ts";
import type { Batch } from "../data/batch.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function trainSpeed(model: Recognizer, batches: (s: number) => Batch, steps: number): Promise<number> {
  const optimizer = new Adam(model.weights);
  const step = makeTrainStep(model, optimizer, 20, 1);
  const times: number[] = [];
  let size = 0;
  try {
    for (let s = 0; s <= steps; s++) {
      const b = batches(s);
      size = b.shape[0];
      const t = performance.now();
      await step(b, s, 1e-4);
      if (s > 0) times.push((performance.now() - t) / 1000);
    }
  } finally {
    optimizer.dispose();
  }
  return size / median(times);
}

const VISION: Record<string, Record<string, unknown>> = {
  micro: { preset: "micro", num_layers: 1 },
  tiny: { preset: "tiny" },
  full: { preset: "full" },
};

export async function main(): Promise<void> {
  const steps = Number(Deno.env.get("STRATA_BENCH_STEPS") ?? 2);
  const presets = (Deno.env.get("STRATA_ABINET_PRESETS") ?? "micro,tiny").split(",");
  const backend = await prepareBackend(Deno.env.get("STRATA_BACKEND") || undefined);
  console.log(`backend ${backend.name}, tfjs ${backend.tfjsVersion}; 32×128, ${steps} timed steps (median)\n`);
  const head = ["preset", "batch", "ABINet parameters", "ABINet samples/s", "ABINet-Vision samples/s", "ratio"];
  const rows: string[][] = [];
  for (const preset of presets) {
    const batch = preset === "full" ? 8 : 16;
    const images = (s: number) => syntheticBatch(s, { batchSize: batch, height: 32, width: 128 });
    const vf = getModelFamily("abinet_vision"), af = getModelFamily("abinet");
    const vision = vf.create(vf.config.parse(VISION[preset], []), 1, 37);
    let v: number;
    try {
      v = await trainSpeed(vision, images, steps);
    } finally {
      vision.dispose();
    }
    const abinet = af.create(af.config.parse({ vision: VISION[preset], language: { preset } }, []), 1, 37);
    try {
      const params = [...abinet.weights.values()].reduce((a, x) => a + x.size, 0);
      const a = await trainSpeed(abinet, images, steps);
      rows.push([
        preset,
        String(batch),
        params.toLocaleString("en-US"),
        a.toFixed(2),
        v.toFixed(2),
        `${(a / v).toFixed(2)}×`,
      ]);
    } finally {
      abinet.dispose();
    }
  }
  console.log(`| ${head.join(" | ")} |\n|${head.map(() => " --- ").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);

  // The BCN alone as pretrain_lm trains it (noisy → clean words).
  const charset = charsetFor(36);
  const words = englishWords();
  console.log("\n| BCN preset | words per batch | words/s |\n| --- | --- | --- |");
  for (const preset of presets.filter((p) => p !== "full")) {
    const arch = resolveLanguageModel({ preset: preset as LanguagePreset });
    const lm = new AbinetLanguageModel(arch, 1, charset.numClasses);
    const batches = (s: number) => {
      const rng = new Rng(s + 1);
      const pairs = Array.from({ length: 256 }, () => {
        const clean = words[rng.int(0, words.length - 1)];
        return { clean, noisy: mutateSpelling(clean, rng, charset.chars, 25) };
      });
      return textBatch(pairs, charset, 25);
    };
    try {
      console.log(`| ${preset} | 256 | ${(await trainSpeed(lm, batches, steps)).toFixed(1)} |`);
    } finally {
      lm.dispose();
    }
  }
}

if (import.meta.main) await main();
