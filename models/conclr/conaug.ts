/**
 * ConAug ("RandCat"), ConCLR's train-time batch transform (independent
 * implementation of `../shared/fixtures/README.md` §3.2).
 *
 * For one view, given a permutation `perm` of the batch and a side `left`:
 * - image i becomes [image perm[i] | image i] (left) or [image i | image perm[i]]
 *   (right), concatenated along the width and resized back to H×W bilinearly
 *   (PyTorch align_corners=False ≡ tfjs alignCorners=false, halfPixelCenters=true);
 * - label i becomes the characters in the same order, truncated to maxLength
 *   (25), followed by the null class to the end (the last row is always null);
 * - length i becomes min(len_i + len_perm[i] - 1, maxLength + 1) (lengths count
 *   one EOS, so the two EOS become one).
 *
 * `conAugViews` draws the permutations and sides from the training context's
 * seeded random source: per view, a Fisher–Yates permutation (B - 1 draws,
 * fixed points allowed, as torch.randperm) then one coin flip (random() < 0.5
 * means left).
 */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../../data/batch.ts";

export interface ConAugLabels {
  /** [B, maxLength + 1] row-major class indices. */
  labels: Int32Array;
  /** Characters + 1, capped at maxLength + 1. */
  lengths: Int32Array;
}

export interface ConAugView extends ConAugLabels {
  /** [B, H, W, C], same shape as the input images. */
  images: tf.Tensor4D;
  texts: string[];
  permutation: number[];
  left: boolean;
}

function checkPermutation(perm: readonly number[], batch: number): void {
  if (perm.length !== batch) throw new Error(`conaug.ts: permutation has ${perm.length} entries, batch is ${batch}`);
  const seen = new Uint8Array(batch);
  for (const p of perm) {
    if (!Number.isInteger(p) || p < 0 || p >= batch || seen[p]) {
      throw new Error(`conaug.ts: [${perm}] is not a permutation of 0..${batch - 1}`);
    }
    seen[p] = 1;
  }
}

/** The label/length part of ConAug. `labels` is [B, positions] row-major, positions = maxLength + 1. */
export function conAugLabels(
  labels: Int32Array,
  lengths: Int32Array,
  perm: readonly number[],
  left: boolean,
): ConAugLabels {
  const batch = lengths.length;
  checkPermutation(perm, batch);
  if (batch === 0 || labels.length % batch !== 0) {
    throw new Error(`conaug.ts: ${labels.length} label entries do not split into ${batch} rows`);
  }
  const positions = labels.length / batch;
  const maxLength = positions - 1;
  const chars = (i: number) => {
    const n = Math.max(0, Math.min(lengths[i] - 1, maxLength));
    return labels.subarray(i * positions, i * positions + n);
  };
  const outLabels = new Int32Array(labels.length);
  const outLengths = new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    const [first, second] = left ? [chars(perm[i]), chars(i)] : [chars(i), chars(perm[i])];
    const row = outLabels.subarray(i * positions, i * positions + maxLength);
    const a = Math.min(first.length, maxLength);
    row.set(first.subarray(0, a), 0);
    row.set(second.subarray(0, Math.min(second.length, maxLength - a)), a);
    outLengths[i] = Math.min(lengths[i] + lengths[perm[i]] - 1, positions);
  }
  return { labels: outLabels, lengths: outLengths };
}

/** The text part, for logging: the concatenated words cut to `maxLength` characters. */
export function conAugTexts(
  texts: readonly string[],
  perm: readonly number[],
  left: boolean,
  maxLength = 25,
): string[] {
  return texts.map((t, i) => {
    const joined = left ? texts[perm[i]] + t : t + texts[perm[i]];
    return Array.from(joined).slice(0, maxLength).join("");
  });
}

/** The image part: NHWC images in, the same shape out. Not differentiable w.r.t. the permutation (data only). */
export function conAugImages(images: tf.Tensor4D, perm: readonly number[], left: boolean): tf.Tensor4D {
  const [batch, height, width] = images.shape;
  checkPermutation(perm, batch);
  return tf.tidy(() => {
    const partner = tf.gather(images, tf.tensor1d(Int32Array.from(perm), "int32"));
    const wide = tf.concat(left ? [partner, images] : [images, partner], 2) as tf.Tensor4D;
    return tf.image.resizeBilinear(wide, [height, width], false, true);
  });
}

/** One ConAug view of a batch with an explicit permutation and side. */
export function conAug(
  images: tf.Tensor4D,
  batch: Pick<Batch, "labels" | "lengths" | "texts">,
  perm: readonly number[],
  left: boolean,
): ConAugView {
  const { labels, lengths } = conAugLabels(batch.labels, batch.lengths, perm, left);
  const maxLength = batch.labels.length / batch.lengths.length - 1;
  return {
    images: conAugImages(images, perm, left),
    labels,
    lengths,
    texts: conAugTexts(batch.texts, perm, left, maxLength),
    permutation: [...perm],
    left,
  };
}

/** A uniform random permutation of 0..n-1 (Fisher–Yates, n - 1 draws from `random`). */
export function randomPermutation(n: number, random: () => number): number[] {
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return perm;
}

/** `count` ConAug views (ConCLR uses 2), each with its own permutation and side drawn from `random`. */
export function conAugViews(
  images: tf.Tensor4D,
  batch: Pick<Batch, "labels" | "lengths" | "texts">,
  random: () => number,
  count = 2,
): ConAugView[] {
  const views: ConAugView[] = [];
  for (let v = 0; v < count; v++) {
    const perm = randomPermutation(batch.lengths.length, random);
    const left = random() < 0.5;
    views.push(conAug(images, batch, perm, left));
  }
  return views;
}
