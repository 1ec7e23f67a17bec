/** Synthetic, deterministic batches for tests of the training code (no LMDB, no decoding). */
import type { Batch } from "../data/batch.ts";
import { charsetFor } from "../data/charset.ts";
import { deriveSeed, Rng } from "./random.ts";
import type { TrainData } from "./loop.ts";

export interface SyntheticOptions {
  batchSize: number;
  height?: number;
  width?: number;
  channels?: number;
  maxLength?: number;
  seed?: number;
}

/** Batch `step`: random short words over protocol 36, each image a per-word brightness pattern plus noise. */
export function syntheticBatch(step: number, o: SyntheticOptions): Batch {
  const { batchSize: b, height = 8, width = 32, channels = 3, maxLength = 25, seed = 0 } = o;
  const cs = charsetFor(36);
  const rng = new Rng(deriveSeed(seed, "synthetic", step));
  const images = new Float32Array(b * height * width * channels);
  const labels = new Int32Array(b * (maxLength + 1));
  const lengths = new Int32Array(b);
  const texts: string[] = [];
  for (let i = 0; i < b; i++) {
    const len = 1 + Math.floor(rng.next() * 3);
    let text = "";
    for (let j = 0; j < len; j++) text += cs.chars[Math.floor(rng.next() * 6)];
    texts.push(text);
    labels.set(cs.encode(text, maxLength), i * (maxLength + 1));
    lengths[i] = len + 1;
    for (let p = 0; p < height * width * channels; p++) {
      const col = Math.floor(p / channels) % width;
      const ch = Math.min(len - 1, Math.floor(col / (width / len)));
      images[i * height * width * channels + p] = cs.classOf(text[ch]) / 6 - 0.5 + 0.1 * (rng.next() - 0.5);
    }
  }
  return { images, shape: [b, height, width, channels], labels, lengths, texts, indices: texts.map((_, i) => i + 1) };
}

export function syntheticData(o: SyntheticOptions): TrainData {
  return {
    async *batches(fromStep: number) {
      for (let s = fromStep;; s++) yield await Promise.resolve(syntheticBatch(s, o));
    },
  };
}
