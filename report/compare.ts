/**
 * The report's answer to "is B better than A here?": for each data set, the difference B − A in CWR and CCR
 * (means over seeds) with two 95 % intervals, from the evaluate stages' per-sample predictions.
 *
 * - **seeds + samples** (the verdict's interval): a two-level bootstrap. Each replicate draws, for each family,
 *   the seeds with replacement, and draws the test samples with replacement once — the same draw for every model
 *   (paired: both families are scored on the same images) — then takes the difference of the seed-mean rates.
 *   It carries both sources of uncertainty: which seeds were trained and which images were tested.
 * - **samples only**: the paired bootstrap over test samples with all seeds kept, i.e. the uncertainty of these
 *   trained models' difference on this data set's population of images.
 *
 * Percentile intervals (2.5 %, 97.5 %) from `replicates` replicates of a seeded PRNG, so a report is
 * reproducible. The verdict: better when the seeds + samples interval lies above 0, worse when below, else
 * "not distinguishable here". CCR is a ratio of sums (correct characters / ground-truth characters), as in the
 * evaluate metrics, so the bootstrap resamples samples and recomputes the ratio.
 */
import { scoreSample } from "../training/metrics.ts";

export interface SampleScores {
  /** 1 when the word is right. */
  correct: Uint8Array;
  correctChars: Float64Array;
  gtChars: Float64Array;
}

/** One model's predictions on one data set, indexed by the data set's sample index. */
export interface ModelPredictions {
  group: string;
  seed: string;
  dataset: string;
  byIndex: Map<number, { correct: boolean; correctChars: number; gtChars: number }>;
}

export interface Interval {
  low: number;
  high: number;
}

export interface Comparison {
  dataset: string;
  baseline: string;
  treatment: string;
  samples: number;
  seeds: { baseline: number; treatment: number };
  cwr: { baseline: number; treatment: number; diff: number; ci: Interval; ci_samples: Interval };
  ccr: { baseline: number; treatment: number; diff: number; ci: Interval; ci_samples: Interval };
  verdict: "better" | "worse" | "not distinguishable";
}

/** Parses an evaluate `predictions` JSONL into per-data-set score maps (the label and prediction are rescored). */
export function parsePredictions(text: string, where: string): Map<string, ModelPredictions["byIndex"]> {
  const out = new Map<string, ModelPredictions["byIndex"]>();
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let j: { dataset?: unknown; index?: unknown; label?: unknown; prediction?: unknown };
    try {
      j = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}:${i + 1}: not JSON (${e instanceof Error ? e.message : e})`);
    }
    if (typeof j.dataset !== "string" || typeof j.index !== "number" || typeof j.label !== "string") {
      throw new Error(`${where}:${i + 1}: expected {dataset, index, label, prediction}`);
    }
    const s = scoreSample(j.label, typeof j.prediction === "string" ? j.prediction : "");
    if (!out.has(j.dataset)) out.set(j.dataset, new Map());
    out.get(j.dataset)!.set(j.index, { correct: s.correct, correctChars: s.correctChars, gtChars: s.gtChars });
  });
  return out;
}

/** mulberry32: a small seeded PRNG for reproducible bootstrap draws. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Per-seed score arrays aligned on the sample indices every run of both families has. */
function align(runs: ModelPredictions[], indices: number[]): SampleScores[] {
  return runs.map((r) => {
    const n = indices.length;
    const s = { correct: new Uint8Array(n), correctChars: new Float64Array(n), gtChars: new Float64Array(n) };
    indices.forEach((idx, k) => {
      const v = r.byIndex.get(idx)!;
      s.correct[k] = v.correct ? 1 : 0;
      s.correctChars[k] = v.correctChars;
      s.gtChars[k] = v.gtChars;
    });
    return s;
  });
}

/** Seed-mean CWR and CCR of `runs` over the sample draw `w` (w[k] = how often sample k was drawn). */
function rates(runs: SampleScores[], seedDraw: number[], w: Float64Array): { cwr: number; ccr: number } {
  let cwr = 0, ccr = 0;
  for (const si of seedDraw) {
    const r = runs[si];
    let n = 0, right = 0, cc = 0, gt = 0;
    for (let k = 0; k < w.length; k++) {
      const x = w[k];
      if (x === 0) continue;
      n += x;
      right += x * r.correct[k];
      cc += x * r.correctChars[k];
      gt += x * r.gtChars[k];
    }
    cwr += n ? right / n : 0;
    ccr += gt ? cc / gt : 0;
  }
  return { cwr: cwr / seedDraw.length, ccr: ccr / seedDraw.length };
}

/**
 * Compares `treatment` against `baseline` on one data set. `runs` hold every seed of both groups on that data
 * set; only the sample indices all of them scored are used (they are the same when the runs are complete).
 */
export function compareOnDataset(
  dataset: string,
  baseline: ModelPredictions[],
  treatment: ModelPredictions[],
  opts: { replicates?: number; seed?: number } = {},
): Comparison | undefined {
  if (baseline.length === 0 || treatment.length === 0) return undefined;
  const all = [...baseline, ...treatment];
  const indices = [...all[0].byIndex.keys()].filter((i) => all.every((r) => r.byIndex.has(i))).sort((a, b) => a - b);
  if (indices.length === 0) return undefined;
  const a = align(baseline, indices), b = align(treatment, indices);
  const n = indices.length;
  const ones = new Float64Array(n).fill(1);
  const allA = a.map((_, i) => i), allB = b.map((_, i) => i);
  const ra = rates(a, allA, ones), rb = rates(b, allB, ones);
  const reps = opts.replicates ?? 1000;
  const rnd = prng(opts.seed ?? 1);
  const dCwr = new Float64Array(reps), dCcr = new Float64Array(reps);
  const sCwr = new Float64Array(reps), sCcr = new Float64Array(reps);
  const w = new Float64Array(n);
  const draw = (m: number) => Array.from({ length: m }, () => Math.floor(rnd() * m));
  for (let r = 0; r < reps; r++) {
    w.fill(0);
    for (let k = 0; k < n; k++) w[Math.floor(rnd() * n)]++;
    // Samples only: all seeds, resampled images.
    const xa = rates(a, allA, w), xb = rates(b, allB, w);
    sCwr[r] = xb.cwr - xa.cwr;
    sCcr[r] = xb.ccr - xa.ccr;
    // Seeds + samples: resampled seeds of each family on the same resampled images.
    const ya = rates(a, draw(a.length), w), yb = rates(b, draw(b.length), w);
    dCwr[r] = yb.cwr - ya.cwr;
    dCcr[r] = yb.ccr - ya.ccr;
  }
  const ci = (x: Float64Array): Interval => {
    const s = x.slice().sort();
    return { low: quantile(s, 0.025), high: quantile(s, 0.975) };
  };
  const cwrCi = ci(dCwr);
  return {
    dataset,
    baseline: baseline[0].group,
    treatment: treatment[0].group,
    samples: n,
    seeds: { baseline: a.length, treatment: b.length },
    cwr: { baseline: ra.cwr, treatment: rb.cwr, diff: rb.cwr - ra.cwr, ci: cwrCi, ci_samples: ci(sCwr) },
    ccr: { baseline: ra.ccr, treatment: rb.ccr, diff: rb.ccr - ra.ccr, ci: ci(dCcr), ci_samples: ci(sCcr) },
    verdict: cwrCi.low > 0 ? "better" : cwrCi.high < 0 ? "worse" : "not distinguishable",
  };
}

/** The plain sentence for a comparison, e.g. "ConCLR-Vision is better here". */
/** One seed per family: the intervals have no seed part, so a verdict is about these two trained models. */
export function oneSeedEach(c: Comparison): boolean {
  return c.seeds.baseline <= 1 && c.seeds.treatment <= 1;
}

export function verdictSentence(c: Comparison, names: (v: string) => string): string {
  const t = names(c.treatment), b = names(c.baseline);
  const oneSeed = oneSeedEach(c) ? " (one seed each: these two models)" : "";
  if (c.verdict === "not distinguishable") return `${t} is not distinguishable from ${b} here${oneSeed}`;
  return `${t} is ${c.verdict} than ${b} here${oneSeed}`;
}

export interface CompareOptions {
  /** Matrix axis whose values are the compared families (e.g. `model`). */
  axis: string;
  baseline: string;
  treatment: string;
  seedAxis: string;
  replicates: number;
  seed: number;
  /** Data sets in display order (others follow in order of appearance). */
  order?: readonly string[];
}

/**
 * Reads the evaluate stages' `predictions` files and compares treatment against baseline on every data set both
 * were scored on. `inputs` carry the engine's matrix values (family axis, seed axis).
 */
export async function buildComparisons(
  inputs: readonly { path: string; stageId: string; matrix: Readonly<Record<string, unknown>> }[],
  opts: CompareOptions,
  warnings: string[] = [],
): Promise<Comparison[]> {
  const runs: ModelPredictions[] = [];
  for (const input of inputs) {
    const group = input.matrix[opts.axis];
    if (group !== opts.baseline && group !== opts.treatment) continue;
    let text: string;
    try {
      const st = await Deno.stat(input.path);
      text = await Deno.readTextFile(st.isDirectory ? `${input.path}/predictions.jsonl` : input.path);
    } catch (e) {
      warnings.push(`${input.stageId}: cannot read predictions: ${e instanceof Error ? e.message : e}`);
      continue;
    }
    const seed = String(input.matrix[opts.seedAxis] ?? "");
    for (const [dataset, byIndex] of parsePredictions(text, input.stageId)) {
      runs.push({ group: String(group), seed, dataset, byIndex });
    }
  }
  const datasets = [...new Set(runs.map((r) => r.dataset))];
  const order = [
    ...(opts.order ?? []).filter((d) => datasets.includes(d)),
    ...datasets.filter((d) => !(opts.order ?? []).includes(d)),
  ];
  const out: Comparison[] = [];
  for (const d of order) {
    const of = (g: string) => runs.filter((r) => r.dataset === d && r.group === g);
    const c = compareOnDataset(d, of(opts.baseline), of(opts.treatment), {
      replicates: opts.replicates,
      seed: opts.seed,
    });
    if (c) out.push(c);
    else warnings.push(`comparison: ${d} was not scored by both ${opts.baseline} and ${opts.treatment}`);
  }
  return out;
}
