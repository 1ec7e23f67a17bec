/**
 * Stage kind `synth`: `count` labelled synthetic word images into an STR
 * LMDB, plus a montage PNG of the first 64 samples to look at.
 *
 * Deterministic: sample i is drawn from a PRNG seeded by (seed, i), so the
 * same params and seed give identical bytes. Make train and test splits
 * with different seeds; `vocabulary: {split: train|test, test_fraction}`
 * also makes their texts disjoint (a seed-independent hash partition of the
 * lower-cased text).
 */
import { array, integer, number, object, type ObjectSchema, string } from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";

const nonNeg = (def: number, description: string) => number({ min: 0, default: def, description });
const prob = (def: number, description: string) => number({ min: 0, max: 1, default: def, description });
const pair = (def: [number, number], description: string, min = 0) =>
  array(number({ min }), { minItems: 2, maxItems: 2, default: def, description });

export const synthParams = object({
  // Documented limit: 50 M images (SynthText + MJSynth are 16 M); larger counts are typos (1e300) that would run
  // until the disk is full.
  count: integer({ min: 1, max: 50_000_000, default: 1000, description: "number of images (at most 50,000,000)" }),
  seed: integer({ min: 0, default: 1, description: "PRNG seed; use different seeds for train and test" }),
  vocabulary: object({
    split: string<"all" | "train" | "test">({
      enum: ["all", "train", "test"],
      default: "all",
      description: "all: any text; train/test: only texts on that side of a hash partition (disjoint splits)",
    }),
    test_fraction: prob(0.1, "share of the vocabulary on the test side"),
  }),
  text: object({
    words: nonNeg(0.7, "weight of English dictionary words"),
    random: nonNeg(0.15, "weight of random alphanumeric strings"),
    numbers: nonNeg(0.15, "weight of numbers"),
    min_length: integer({ min: 1, max: 25, default: 1 }),
    max_length: integer({ min: 1, max: 25, default: 16 }),
    lower: nonNeg(0.4, "weight of lower-case words"),
    upper: nonNeg(0.3, "weight of UPPER-CASE words"),
    title: nonNeg(0.3, "weight of Title-case words"),
  }),
  fonts: object({
    families: array(string(), { default: [], description: "font families (empty: all installed)" }),
    min_weight: integer({ min: 100, max: 900, default: 100 }),
    max_weight: integer({ min: 100, max: 900, default: 900 }),
  }),
  render: object({
    font_size: pair([18, 32], "font size range (px)", 6),
    stretch: pair([0.75, 1.3], "horizontal stretch range (aspect ratio variation)", 0.1),
    spacing_p: prob(0.25, "probability of extra letter spacing"),
    spacing: nonNeg(0.25, "max extra letter spacing (× font size)"),
    min_contrast: prob(0.3, "min luminance difference between text and background"),
    gradient_p: prob(0.3, "probability of a gradient background"),
    texture_p: prob(0.3, "probability of a noise texture (blotches, streaks) in the background"),
    outline_p: prob(0.1, "probability of an outline"),
    shadow_p: prob(0.1, "probability of a shadow"),
    rotation: number({ min: 0, max: 90, default: 5, description: "max rotation (degrees)" }),
    shear: nonNeg(0.3, "max horizontal shear (tan of the angle)"),
    curve_p: prob(0.15, "probability of a curved baseline"),
    curve: nonNeg(0.5, "max sag of a curved baseline (× font size)"),
    perspective_p: prob(0.2, "probability of perspective distortion"),
    perspective: prob(0.3, "perspective corner pull"),
    blur_p: prob(0.2, "probability of blur"),
    noise_p: prob(0.3, "probability of pixel noise"),
    noise: nonNeg(12, "max pixel noise std (0..255)"),
    jpeg_quality: pair([40, 95], "JPEG quality range", 1),
    png_p: prob(0.1, "share of PNG images"),
  }),
  montage: integer({ min: 0, max: 256, default: 64, description: "samples shown in the montage PNG" }),
});
export type SynthParams = typeof synthParams extends ObjectSchema<infer T> ? T : never;

async function packageVersion(name: string): Promise<string> {
  try {
    const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(await Deno.readTextFile(url)).version;
  } catch {
    return "absent";
  }
}

const kind = registerStageKind<SynthParams>({
  kind: "synth",
  version: 1,
  description: "Synthetic word images (dictionary words, random strings, numbers) into an STR LMDB.",
  params: synthParams,
  inputs: {},
  outputs: {
    lmdb: { description: "the STR LMDB", type: "dir" },
    montage: { description: "PNG of the first samples with their labels", type: "file" },
  },
  module: import.meta.url,
  async environment() {
    const { FONTSOURCE_FAMILIES } = await import("../data/fonts.ts");
    const names = ["@napi-rs/canvas", "an-array-of-english-words", "dejavu-fonts-ttf"];
    names.push(...FONTSOURCE_FAMILIES.map((f) => `@fontsource/${f}`));
    return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await packageVersion(n)])));
  },
  async run(ctx: StageContext<SynthParams>) {
    const { synthesize } = await import("../data/synth_run.ts");
    return await synthesize(ctx.params, ctx.output("lmdb"), ctx.output("montage"), {
      log: (m) => ctx.log(m),
      progress: (m) => ctx.progress(m),
      signal: ctx.signal,
    });
  },
});

export default kind;
