import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { charsetFor } from "../data/charset.ts";
import type { Recognizer } from "../models/recognizer.ts";
import { recognize } from "./predict.ts";

Deno.test("recognize: argmax up to the first EOS, confidence includes the EOS", async () => {
  await tf.setBackend("cpu");
  // 1 sample, 4 positions, 3 classes (0 = EOS, 1 = 'a', 2 = 'b').
  const p = [[0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1], [0.1, 0.8, 0.1]];
  const logits = tf.log(tf.tensor3d([p]));
  const model = { predict: () => ({ logits: tf.clone(logits) }) } as unknown as Recognizer;
  const images = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
  const [r] = await recognize(model, images, charsetFor(36));
  assert.equal(r.text, "ab");
  assert.ok(Math.abs(r.confidence - 0.7 * 0.6 * 0.5) < 1e-6);
  tf.dispose([logits, images]);
});
