/**
 * Greedy decoding of `[B, T, C]` logits (class 0 = null/EOS):
 *
 * - per position, the argmax class; the word is the classes before the first EOS;
 * - confidence = product of the chosen (softmax) probabilities up to and including the first EOS, or
 *   over all T positions when no position predicts EOS;
 * - `ptLength` follows ABINet's `Model._get_length` at the pinned commit: index of the first EOS + 1,
 *   or 0 when no position predicts EOS.
 */
import type * as tf from "@tensorflow/tfjs";

export interface Decoded {
  /** Class indices before the first EOS. */
  indices: number[];
  /** The text, when a charset was given (else ""). */
  text: string;
  confidence: number;
  /** ABINet's `pt_lengths`: first EOS index + 1, or 0 when there is none. */
  ptLength: number;
  /** Chosen probability per position up to the first EOS (inclusive) or all T. */
  probs: number[];
}

export interface Decoder {
  decode(indices: ArrayLike<number>): string;
}

/** ABINet `_get_length` for row-major argmax `[B, T]`. */
export function ptLengths(argmax: ArrayLike<number>, batch: number, positions: number): Int32Array {
  const out = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < positions; t++) {
      if (argmax[b * positions + t] === 0) {
        out[b] = t + 1;
        break;
      }
    }
  }
  return out;
}

/** Decodes row-major logits of shape `[B, T, C]`. */
export function decodeLogits(logits: ArrayLike<number>, shape: readonly number[], charset?: Decoder): Decoded[] {
  const [batch, positions, classes] = shape;
  if (logits.length !== batch * positions * classes) {
    throw new Error(`models/decode.ts: ${logits.length} logits do not match shape [${shape}]`);
  }
  const out: Decoded[] = [];
  for (let b = 0; b < batch; b++) {
    const indices: number[] = [];
    const probs: number[] = [];
    let ptLength = 0;
    for (let t = 0; t < positions; t++) {
      const base = (b * positions + t) * classes;
      let best = 0;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) {
        if (logits[base + c] > max) [max, best] = [logits[base + c], c];
      }
      let z = 0;
      for (let c = 0; c < classes; c++) z += Math.exp(logits[base + c] - max);
      probs.push(1 / z);
      if (best === 0) {
        ptLength = t + 1;
        break;
      }
      indices.push(best);
    }
    out.push({
      indices,
      text: charset ? charset.decode(indices) : "",
      confidence: probs.reduce((a, p) => a * p, 1),
      ptLength,
      probs,
    });
  }
  return out;
}

/** Reads a logits tensor and decodes it (does not dispose it). */
export async function decodeTensor(logits: tf.Tensor3D, charset?: Decoder): Promise<Decoded[]> {
  return decodeLogits(await logits.data() as Float32Array, logits.shape, charset);
}
