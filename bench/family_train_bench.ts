/**
 * `deno task bench family_train`: training samples/s of each family's `micro` preset at 32×128 on the selected
 * backend (STRATA_BACKEND forces one) — the train stage's step (forward + backward + clipping + Adam) at the
 * default experiment's batch of 16, on words of 3–10 characters (PARSeq's decoder cost grows with the longest
 * word of the batch, and its PLM loss runs 6 permutations). Ratios are against abinet_vision micro measured in
 * the same run. STRATA_BENCH_STEPS (default 3) timed steps after one warm-up; the median is reported.
 */
import "../models/mod.ts";
import type { Batch } from "../data/batch.ts";
import { charsetFor } from "../data/charset.ts";
import { getModelFamily } from "../models/recognizer.ts";
import { Adam } from "../training/adam.ts";
import { prepareBackend } from "../training/backend.ts";
import { makeTrainStep } from "../training/loop.ts";
import { deriveSeed, Rng } from "../training/random.ts";

const FAMILIES = ["abinet_vision", "conclr_vision", "parseq"];

/** A batch of random images and random 3–10 character words (protocol 36). */
export function wordBatch(step: number, batch: number): Batch {
  const cs = charsetFor(36);
  const rng = new Rng(deriveSeed(7, "family_train", step));
  const [h, w, c, positions] = [32, 128, 3, 26];
  const images = new Float32Array(batch * h * w * c);
  for (let i = 0; i < images.length; i++) images[i] = rng.next() * 2 - 1;
  const labels = new Int32Array(batch * positions);
  const lengths = new Int32Array(batch);
  const texts: string[] = [];
  for (let b = 0; b < batch; b++) {
    const n = 3 + Math.floor(rng.next() * 8);
    let text = "";
    for (let j = 0; j < n; j++) text += cs.chars[Math.floor(rng.next() * 36)];
    labels.set(cs.encode(text), b * positions);
    lengths[b] = n + 1;
    texts.push(text);
  }
  return { images, shape: [batch, h, w, c], labels, lengths, texts, indices: texts.map((_, i) => i + 1) };
}

export async function main(): Promise<void> {
  const steps = Number(Deno.env.get("STRATA_BENCH_STEPS") ?? 3);
  const batch = Number(Deno.env.get("STRATA_BENCH_BATCH") ?? 16);
  const backend = await prepareBackend(Deno.env.get("STRATA_BACKEND") || undefined);
  console.log(`backend ${backend.name}, tfjs ${backend.tfjsVersion}; micro presets, 32×128, batch ${batch}\n`);
  const speeds = new Map<string, number>();
  const params = new Map<string, number>();
  for (const name of FAMILIES) {
    const family = getModelFamily(name);
    const model = family.create(family.config.parse({ preset: "micro" }, []), 1, 37);
    const optimizer = new Adam(model.weights);
    try {
      params.set(name, [...model.weights.values()].reduce((a, v) => a + v.size, 0));
      const step = makeTrainStep(model, optimizer, 20, 1);
      const times: number[] = [];
      for (let s = 0; s <= steps; s++) {
        const b = wordBatch(s, batch);
        const t = performance.now();
        await step(b, s, 1e-4);
        if (s > 0) times.push((performance.now() - t) / 1000);
      }
      times.sort((a, b) => a - b);
      speeds.set(name, batch / times[Math.floor(times.length / 2)]);
    } catch (e) {
      console.log(`${name} failed: ${(e as Error).message}`);
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  }
  const ref = speeds.get("abinet_vision");
  console.log("| family (micro) | parameters | train samples/s | vs abinet_vision |\n| --- | --- | --- | --- |");
  for (const name of FAMILIES) {
    const v = speeds.get(name);
    const ratio = v !== undefined && ref !== undefined ? `${(v / ref).toFixed(2)}×` : "—";
    console.log(`| ${name} | ${params.get(name)?.toLocaleString("en-US")} | ${v?.toFixed(1) ?? "failed"} | ${ratio} |`);
  }
}

if (import.meta.main) await main();
