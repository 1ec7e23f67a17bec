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
