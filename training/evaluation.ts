/** Runs a recognizer over evaluation batches and scores it (shared by validation, `evaluate` and tests). */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batch.ts";
import type { Charset } from "../data/charset.ts";
import type { Recognizer } from "../models/recognizer.ts";
import { combineMetrics, MetricAccumulator, type TextMetrics } from "./metrics.ts";
import { type Decoder, type PredictOptions, recognize, recognizeOutputs } from "./predict.ts";

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
  /** Decoding options for `model.predict` / `predictOutputs` (strhub's `decode_ar`, `refine_iters`). */
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

/** Metrics of the main prediction, plus each named output's when the model has several (ABINet). */
export type EvalMetrics = TextMetrics & { outputs?: Record<string, TextMetrics> };

/**
 * Scores `model` on `batches` (labels already normalised by the evaluation protocol). Predictions are decoded
 * with the model's charset and, when `protocol` is given, normalised by it too (so a 94-class model is scored
 * case-insensitively under protocol 36); a prediction the protocol rejects counts as the empty string.
 * A model with `predictOutputs` (ABINet: vision, language and alignment per iteration) is run once per batch
 * and every output is scored too (`outputs`); the main metrics are those of its last output (= `predict`).
 */
export async function evaluateModel(
  model: Recognizer,
  batches: AsyncIterable<Batch>,
  modelCharset: Decoder,
  protocol?: Charset,
  onSample?: (s: EvalSample) => void | Promise<void>,
  opts: EvalOptions = {},
): Promise<EvalMetrics> {
  const acc = new MetricAccumulator();
  const perOutput = new Map<string, MetricAccumulator>();
  const normalize = (text: string) => {
    if (!protocol) return text;
    const n = protocol.normalize(text, { maxLength: 1000 });
    return n.ok ? n.text : "";
  };
  for await (const batch of batches) {
    const raw = tf.tensor4d(batch.images, batch.shape);
    const images = opts.rotation ? rotateImages(raw, opts.rotation) : raw;
    let rec;
    try {
      if (model.predictOutputs) {
        const outputs = await recognizeOutputs(model, images, modelCharset, opts.predict);
        for (const [name, list] of outputs) {
          if (!perOutput.has(name)) perOutput.set(name, new MetricAccumulator());
          const a = perOutput.get(name)!;
          list.forEach((r, i) => a.add(batch.texts[i], normalize(r.text), r.confidence));
        }
        rec = [...outputs.values()].at(-1)!;
      } else {
        rec = await recognize(model, images, modelCharset, opts.predict);
      }
    } finally {
      tf.dispose([raw, images]);
    }
    for (const [i, r] of rec.entries()) {
      const prediction = normalize(r.text);
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
  const result: EvalMetrics = acc.result();
  if (perOutput.size > 0) result.outputs = Object.fromEntries([...perOutput].map(([k, a]) => [k, a.result()]));
  return result;
}

/** `{outputs}` combined over data sets like `combineMetrics` (empty when the model has no named outputs). */
export function combineOutputs(parts: readonly EvalMetrics[]): { outputs?: Record<string, TextMetrics> } {
  const names = [...new Set(parts.flatMap((p) => Object.keys(p.outputs ?? {})))];
  if (names.length === 0) return {};
  return {
    outputs: Object.fromEntries(
      names.map((n) => [n, combineMetrics(parts.flatMap((p) => p.outputs?.[n] ? [p.outputs[n]] : []))]),
    ),
  };
}

/** One log line of the per-output word accuracies, e.g. `vision 0.61, alignment_1 0.66, …`. */
export function outputsSummary(m: EvalMetrics): string {
  return Object.entries(m.outputs ?? {}).map(([k, v]) => `${k} ${v.word_accuracy.toFixed(4)}`).join(", ");
}
