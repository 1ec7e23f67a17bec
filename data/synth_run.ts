/**
 * Runs the synthetic word renderer into an LMDB and draws the montage
 * (used by the `synth` stage kind and the data benchmark).
 */
import { dirname } from "node:path";
import { ensureFreeSpace } from "../pipeline/disk.ts";
import { loadFonts } from "./fonts.ts";
import { decodeImage, loadCanvas } from "./image.ts";
import { createLmdb } from "./lmdb.ts";
import { hashSeed, Rng } from "./random.ts";
import { type RenderParams, renderWord } from "./synth.ts";
import { type TextKind, type TextParams, TextSource, type VocabularyParams } from "./words.ts";

export interface SynthConfig {
  count: number;
  seed: number;
  vocabulary: VocabularyParams;
  text: TextParams;
  fonts: { families: string[]; min_weight: number; max_weight: number };
  render: RenderParams;
  /** Samples in the montage (0: an empty-grid PNG is still written when a path is given). */
  montage: number;
}

export interface SynthHooks {
  log?: (m: string) => void;
  progress?: (m: string) => void;
  signal?: AbortSignal;
}

export interface Sample {
  bytes: Uint8Array;
  label: string;
  width: number;
  height: number;
  format: string;
  kind: TextKind;
  font: string;
}

/** A deterministic generator of samples: sample i depends only on (config, i). */
export async function synthGenerator(
  config: SynthConfig,
): Promise<{ sample(i: number): Sample; faces: number; vocabulary: number }> {
  await loadCanvas();
  const faces = await loadFonts(config.fonts.families, {
    minWeight: config.fonts.min_weight,
    maxWeight: config.fonts.max_weight,
  });
  const texts = new TextSource(config.text, config.vocabulary);
  return {
    faces: faces.length,
    vocabulary: texts.vocabularySize,
    sample(i: number): Sample {
      const rng = new Rng(hashSeed(config.seed, i, "synth"));
      const { text, kind } = texts.next(rng);
      const font = faces[Math.floor(rng.next() * faces.length)];
      const r = renderWord(rng, text, font, config.render);
      return {
        bytes: r.bytes,
        label: r.text,
        width: r.width,
        height: r.height,
        format: r.format,
        kind,
        font: font.alias,
      };
    },
  };
}

export async function synthesize(
  config: SynthConfig,
  lmdbPath: string,
  montagePath: string | undefined,
  hooks: SynthHooks = {},
): Promise<{ summary: Record<string, unknown> }> {
  const gen = await synthGenerator(config);
  hooks.log?.(
    `synth: ${config.count} images, ${gen.faces} font faces, ${gen.vocabulary} dictionary words (split ${config.vocabulary.split})`,
  );
  const writer = await createLmdb(lmdbPath);
  const first: Sample[] = [];
  const kinds: Record<string, number> = {};
  const formats: Record<string, number> = {};
  let widthSum = 0, heightSum = 0, lengthSum = 0;
  let bytes = 0;
  try {
    for (let i = 0; i < config.count; i++) {
      if (hooks.signal?.aborted) throw new Error("synth interrupted");
      if (i % 250 === 0) hooks.progress?.(`synth ${i}/${config.count}`);
      const s = gen.sample(i);
      writer.add(s.bytes, s.label);
      bytes += s.bytes.length + s.label.length + 64;
      // After a first sample of images, and then now and then: is there room for the rest (× 1.25 for LMDB pages)?
      if ((i === 199 || (i + 1) % 20000 === 0) && i + 1 < config.count) {
        await ensureFreeSpace(
          dirname(lmdbPath),
          (bytes / (i + 1)) * (config.count - i - 1) * 1.25,
          `synth ${lmdbPath}`,
        );
      }
      if (first.length < config.montage) first.push(s);
      kinds[s.kind] = (kinds[s.kind] ?? 0) + 1;
      formats[s.format] = (formats[s.format] ?? 0) + 1;
      widthSum += s.width;
      heightSum += s.height;
      lengthSum += s.label.length;
    }
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  if (montagePath) await writeMontage(first, montagePath);
  return {
    summary: {
      count: config.count,
      seed: config.seed,
      split: config.vocabulary.split,
      font_faces: gen.faces,
      dictionary_words: gen.vocabulary,
      kinds,
      formats,
      mean_width: Math.round(widthSum / config.count),
      mean_height: Math.round(heightSum / config.count),
      mean_label_length: Math.round((lengthSum / config.count) * 100) / 100,
    },
  };
}

/** A PNG grid of samples (4 columns), each scaled to 32 px high with its label underneath. */
export async function writeMontage(
  samples: readonly { bytes: Uint8Array; label: string }[],
  path: string,
): Promise<void> {
  const { createCanvas } = await loadCanvas();
  await loadFonts(["dejavu-sans"]);
  const cols = 4, cellW = 264, cellH = 54, imgH = 32, maxW = 256;
  const rows = Math.max(1, Math.ceil(samples.length / cols));
  const canvas = createCanvas(cols * cellW, rows * cellH);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#f4f4f4";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = `12px "strata-dejavu-sans-400"`;
  for (let k = 0; k < samples.length; k++) {
    const x = (k % cols) * cellW + 4, y = Math.floor(k / cols) * cellH + 3;
    const img = await decodeImage(samples[k].bytes);
    const w = Math.min(maxW, Math.round((img.width * imgH) / img.height));
    ctx.drawImage(img, x, y, w, imgH);
    ctx.fillStyle = "#111";
    ctx.fillText(`${k + 1}: ${samples[k].label}`, x, y + imgH + 14);
  }
  const tmp = `${path}.tmp`;
  await Deno.writeFile(tmp, canvas.encodeSync("png"));
  await Deno.rename(tmp, path);
}
