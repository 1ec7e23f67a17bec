/** Runs a recognizer over evaluation batches and scores it (shared by validation, `evaluate` and tests). */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batch.ts";
import type { Charset } from "../data/charset.ts";
import type { Recognizer } from "../models/recognizer.ts";
import { MetricAccumulator, type TextMetrics } from "./metrics.ts";
import { type Decoder, type PredictOptions, recognize } from "./predict.ts";

export type Rotation = 0 | 90 | 180 | 270;
export const ROTATIONS: readonly Rotation[] = [0, 90, 180, 270];

/**
 * Rotates NHWC images counter-clockwise by `degrees` (as strhub's `--rotation`, torchvision's
 * `rotate(expand=True)`) and resizes back to the model's size. 180° is exact; 90° / 270° turn the already
 * resized image (H×W → W×H) and resize it bilinearly to H×W again, where strhub rotates the original image
 * before its one resize, so the pixels differ by one extra resampling.
 */
export function rotateImages(images: tf.Tensor4D, degrees: Rotation): tf.Tensor4D {
  if (degrees === 0) return tf.clone(images);
  return tf.tidy(() => {
    const [, h, w] = images.shape;
    if (degrees === 180) return tf.reverse(images, [1, 2]);
    // Counter-clockwise 90°: out[i, j] = in[j, W-1-i] → transpose after flipping the width axis.
    const turned = degrees === 90
      ? tf.transpose(tf.reverse(images, 2), [0, 2, 1, 3])
      : tf.reverse(tf.transpose(images, [0, 2, 1, 3]), 2);
    return tf.image.resizeBilinear(turned as tf.Tensor4D, [h, w], false, true);
  });
}

export interface EvalOptions {
  /** Decoding options for `model.predict` (strhub's `decode_ar`, `refine_iters`). */
  predict?: PredictOptions;
  /** Rotate every image by this many degrees first. */
  rotation?: Rotation;
}

export interface EvalSample {
  /** 1-based index in the source data set. */
  index: number;
  label: string;
  prediction: string;
  confidence: number;
  correct: boolean;
}

/**
 * Scores `model` on `batches` (labels already normalised by the evaluation protocol). Predictions are decoded
 * with the model's charset and, when `protocol` is given, normalised by it too (so a 94-class model is scored
 * case-insensitively under protocol 36); a prediction the protocol rejects counts as the empty string.
 */
export async function evaluateModel(
  model: Recognizer,
  batches: AsyncIterable<Batch>,
  modelCharset: Decoder,
  protocol?: Charset,
  onSample?: (s: EvalSample) => void | Promise<void>,
  opts: EvalOptions = {},
): Promise<TextMetrics> {
  const acc = new MetricAccumulator();
  for await (const batch of batches) {
    const raw = tf.tensor4d(batch.images, batch.shape);
    const images = opts.rotation ? rotateImages(raw, opts.rotation) : raw;
    let rec;
    try {
      rec = await recognize(model, images, modelCharset, opts.predict);
    } finally {
      tf.dispose([raw, images]);
    }
    for (const [i, r] of rec.entries()) {
      let prediction = r.text;
      if (protocol) {
        const n = protocol.normalize(prediction, { maxLength: 1000 });
        prediction = n.ok ? n.text : "";
      }
      const score = acc.add(batch.texts[i], prediction, r.confidence);
      await onSample?.({
        index: batch.indices[i],
        label: batch.texts[i],
        prediction,
        confidence: r.confidence,
        correct: score.correct,
      });
    }
  }
  return acc.result();
}
