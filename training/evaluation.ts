/** Runs a recognizer over evaluation batches and scores it (shared by validation, `evaluate` and tests). */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batch.ts";
import type { Charset } from "../data/charset.ts";
import type { Recognizer } from "../models/recognizer.ts";
import { combineMetrics, MetricAccumulator, type TextMetrics } from "./metrics.ts";
import { type Decoder, recognize, recognizeOutputs } from "./predict.ts";

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
): Promise<EvalMetrics> {
  const acc = new MetricAccumulator();
  const perOutput = new Map<string, MetricAccumulator>();
  const normalize = (text: string) => {
    if (!protocol) return text;
    const n = protocol.normalize(text, { maxLength: 1000 });
    return n.ok ? n.text : "";
  };
  for await (const batch of batches) {
    const images = tf.tensor4d(batch.images, batch.shape);
    let rec;
    try {
      if (model.predictOutputs) {
        const outputs = await recognizeOutputs(model, images, modelCharset);
        for (const [name, list] of outputs) {
          if (!perOutput.has(name)) perOutput.set(name, new MetricAccumulator());
          const a = perOutput.get(name)!;
          list.forEach((r, i) => a.add(batch.texts[i], normalize(r.text), r.confidence));
        }
        rec = [...outputs.values()].at(-1)!;
      } else {
        rec = await recognize(model, images, modelCharset);
      }
    } finally {
      images.dispose();
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
