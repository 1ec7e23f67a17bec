import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "../models/parseq/mod.ts";
import { getModelFamily } from "../models/recognizer.ts";
import { costTable, countFlops, kernelFlops, measureCost } from "./cost.ts";

Deno.test("kernelFlops: matrix products and convolutions from their shapes", () => {
  assert.equal(kernelFlops("BatchMatMul", [[2, 3, 4], [2, 4, 5]], [[2, 3, 5]]), 2 * 3 * 5 * 4);
  // transposed b ([.., n, k]) and a broadcast batch
  assert.equal(kernelFlops("BatchMatMul", [[6, 3, 4], [1, 5, 4]], [[6, 3, 5]]), 6 * 3 * 5 * 4);
  assert.equal(kernelFlops("Conv2D", [[1, 32, 128, 3], [4, 8, 3, 64]], [[1, 8, 16, 64]]), 8 * 16 * 64 * 4 * 8 * 3);
  assert.equal(kernelFlops("Add", [[2], [2]], [[2]]), 0);
});

Deno.test("countFlops: a real tfjs graph", async () => {
  await tf.setBackend("cpu");
  const a = tf.ones([6, 4]), b = tf.ones([4, 5]);
  const ks = await countFlops(() => tf.add(tf.matMul(a, b), 1));
  assert.equal(ks.reduce((s, k) => s + k.flops, 0), 6 * 5 * 4);
  tf.dispose([a, b]);
});

Deno.test("measureCost: parseq micro NAR, the count equals the layer shapes' (encoder, decoder, head)", async () => {
  await tf.setBackend("cpu");
  const family = getModelFamily("parseq");
  const model = family.create(family.config.parse({ preset: "micro" }, []), 1, 37);
  try {
    const c = await measureCost(model, [32, 128, 3], { decoding: { decodeAr: false, refineIters: 0 }, repeats: 1 });
    const [n, e, hidden, q] = [128, 64, 256, 26];
    // ViT block: qkv, scores, weights·v, proj, MLP; patch embedding 4×8×3 per output.
    const block = n * e * 3 * e + 2 * n * n * e + n * e * e + 2 * n * e * hidden;
    const encoder = 2 * block + n * e * 4 * 8 * 3;
    // NAR: 26 queries over the BOS context (length 1) and the 128 memory rows.
    const selfAttn = q * e * e + 1 * e * 2 * e + 2 * q * 1 * e + q * e * e;
    const crossAttn = q * e * e + n * e * 2 * e + 2 * q * n * e + q * e * e;
    const decoder = selfAttn + crossAttn + 2 * q * e * hidden;
    const head = q * e * 37;
    const byName = Object.fromEntries(c.modules.map((m) => [m.module, m]));
    assert.equal(byName.encoder.flops, encoder);
    assert.equal(byName.decoder.flops, decoder);
    assert.equal(byName.head.flops, head);
    assert.equal(byName.model.flops, encoder + decoder + head);
    assert.equal(
      byName.model.parameters,
      model.weights.size && [...model.weights.values()].reduce((a, v) => a + v.size, 0),
    );
    assert.equal(
      byName.encoder.parameters + byName.decoder.parameters + byName.head.parameters,
      byName.model.parameters,
    );
    assert.equal(byName.head.parameters, 64 * 37 + 37);
    assert.ok(c.secondsPerImage > 0);
    assert.match(costTable(c), /\| encoder \| \d+\.\d k \| 17\.56 M \|/);
  } finally {
    model.dispose();
  }
});
