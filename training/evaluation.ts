/** Runs a recognizer over evaluation batches and scores it (shared by validation, `evaluate` and tests). */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batch.ts";
import type { Charset } from "../data/charset.ts";
import type { Recognizer } from "../models/recognizer.ts";
import { MetricAccumulator, type TextMetrics } from "./metrics.ts";
import { type Decoder, recognize } from "./predict.ts";

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
): Promise<TextMetrics> {
  const acc = new MetricAccumulator();
  for await (const batch of batches) {
    const images = tf.tensor4d(batch.images, batch.shape);
    let rec;
    try {
      rec = await recognize(model, images, modelCharset);
    } finally {
      images.dispose();
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
