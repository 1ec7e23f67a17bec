/**
 * A picture of ConAug on real training batches (the `conaug_montage` stage): for the first `count` samples of
 * the training stream (decoded, resized and augmented exactly as the train stage's loader does for its first
 * batch), the original and ConCLR's two concatenated views, each with its label — the check the ConCLR README
 * does by hand to see that the augmentation and its labels line up.
 */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../../data/batch.ts";
import { denormalizeToRgba, type ImageSpec, loadCanvas } from "../../data/image.ts";
import { loadFonts } from "../../data/fonts.ts";
import { imageSpecOf } from "../../data/params.ts";
import { openTrainData } from "../../training/data.ts";
import type { DataParams } from "../../training/data_params.ts";
import { deriveSeed, Rng } from "../../training/random.ts";
import { conAugViews } from "./conaug.ts";

export interface MontageResult {
  png: Uint8Array;
  rows: { original: string; views: string[] }[];
}

export async function conAugMontage(
  paths: readonly string[],
  data: DataParams,
  count: number,
  seed: number,
): Promise<MontageResult> {
  const opened = await openTrainData(paths, data, count, seed);
  const spec: ImageSpec = imageSpecOf(data.image);
  try {
    const it = opened.data.batches(0);
    const first = await it.next();
    await it.return?.(undefined);
    if (first.done) throw new Error(`${paths.join(", ")}: no training batch`);
    const batch: Batch = first.value;
    const images = tf.tensor4d(batch.images, batch.shape);
    const random = new Rng(deriveSeed(seed, "conaug_montage")).fn();
    const views = conAugViews(images, batch, random, 2);
    try {
      const pixels = [batch.images, ...(await Promise.all(views.map((v) => v.images.data() as Promise<Float32Array>)))];
      const texts = [batch.texts, ...views.map((v) => v.texts)];
      const png = await draw(pixels, texts, spec, count);
      return { png, rows: batch.texts.map((t, i) => ({ original: t, views: views.map((v) => v.texts[i]) })) };
    } finally {
      images.dispose();
      for (const v of views) v.images.dispose();
    }
  } finally {
    await opened.close();
  }
}

async function draw(pixels: Float32Array[], texts: string[][], spec: ImageSpec, count: number): Promise<Uint8Array> {
  const { createCanvas } = await loadCanvas();
  await loadFonts(["dejavu-sans"]);
  const scale = Math.max(1, Math.round(128 / spec.width));
  const cw = spec.width * scale * 2, ch = spec.height * 2, labelH = 18, pad = 8, headH = 20;
  const canvas = createCanvas(3 * (cw + pad) + pad, headH + count * (ch + labelH + pad) + pad);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = `13px "strata-dejavu-sans-400"`;
  ctx.fillStyle = "#555555";
  ["original (as trained)", "ConAug view 1", "ConAug view 2"].forEach((t, c) =>
    ctx.fillText(t, pad + c * (cw + pad), 14)
  );
  const tile = createCanvas(spec.width, spec.height);
  const tctx = tile.getContext("2d");
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < 3; c++) {
      const rgba = denormalizeToRgba(pixels[c], spec, i);
      const img = tctx.createImageData(spec.width, spec.height);
      img.data.set(rgba);
      tctx.putImageData(img, 0, 0);
      const x = pad + c * (cw + pad), y = headH + i * (ch + labelH + pad);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(tile, x, y, cw, ch);
      ctx.fillStyle = "#111111";
      ctx.fillText(texts[c][i], x, y + ch + 14);
    }
  }
  return new Uint8Array(canvas.encodeSync("png"));
}
