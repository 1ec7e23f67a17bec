/**
 * Eval-mode recognition of a batch: `model.predict` then models/decode.ts (argmax per position up to the
 * first EOS; confidence = product of the chosen probabilities, the EOS's included).
 */
import type * as tf from "@tensorflow/tfjs";
import { decodeLogits, type Decoder } from "../models/decode.ts";
import type { PredictOptions, Recognizer } from "../models/recognizer.ts";

export type { Decoder, PredictOptions };

export interface Recognition {
  text: string;
  confidence: number;
}

/** Decoding options as stage params (strhub's `decode_ar`, `refine_iters`); absent = the model's own. */
export interface DecodingParams {
  decode_ar?: boolean;
  refine_iters?: number;
}

/**
 * `PredictOptions` from params, checked against what the family honours: asking a family without
 * autoregressive decoding for `decode_ar` is an error rather than a silently ignored param.
 */
export function predictOptions(model: Recognizer, p: DecodingParams, where: string): PredictOptions {
  const asked = (["decode_ar", "refine_iters"] as const).filter((k) => p[k] !== undefined);
  const unsupported = asked.filter((k) => !(model.decodingParams ?? []).includes(k));
  if (unsupported.length > 0) {
    throw new Error(`${where}: model family ${model.family} has no ${unsupported.join(" / ")} (parseq has)`);
  }
  return { decodeAr: p.decode_ar, refineIters: p.refine_iters };
}

/** Runs `model.predict` on NHWC images and decodes. */
export async function recognize(
  model: Recognizer,
  images: tf.Tensor4D,
  charset: Decoder,
  opts?: PredictOptions,
): Promise<Recognition[]> {
  const { logits } = opts ? model.predict(images, opts) : model.predict(images);
  try {
    const data = await logits.data();
    return decodeLogits(data, logits.shape, charset).map((d) => ({ text: d.text, confidence: d.confidence }));
  } finally {
    logits.dispose();
  }
}

/** Runs `model.predictOutputs` (models with several outputs, e.g. ABINet) and decodes each output. */
export async function recognizeOutputs(
  model: Recognizer,
  images: tf.Tensor4D,
  charset: Decoder,
  opts?: PredictOptions,
): Promise<Map<string, Recognition[]>> {
  if (!model.predictOutputs) throw new Error(`${model.family}: the model has no named outputs`);
  const outputs = opts ? model.predictOutputs(images, opts) : model.predictOutputs(images);
  try {
    const out = new Map<string, Recognition[]>();
    for (const [name, logits] of outputs) {
      const data = await logits.data();
      out.set(name, decodeLogits(data, logits.shape, charset).map((d) => ({ text: d.text, confidence: d.confidence })));
    }
    return out;
  } finally {
    for (const t of outputs.values()) t.dispose();
  }
}
