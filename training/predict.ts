/**
 * Eval-mode recognition of a batch: `model.predict` then models/decode.ts (argmax per position up to the
 * first EOS; confidence = product of the chosen probabilities, the EOS's included).
 */
import type * as tf from "@tensorflow/tfjs";
import { decodeLogits, type Decoder } from "../models/decode.ts";
import type { Recognizer } from "../models/recognizer.ts";

export type { Decoder };

export interface Recognition {
  text: string;
  confidence: number;
}

/** Runs `model.predict` on NHWC images and decodes. */
export async function recognize(model: Recognizer, images: tf.Tensor4D, charset: Decoder): Promise<Recognition[]> {
  const { logits } = model.predict(images);
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
): Promise<Map<string, Recognition[]>> {
  if (!model.predictOutputs) throw new Error(`${model.family}: the model has no named outputs`);
  const outputs = model.predictOutputs(images);
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
