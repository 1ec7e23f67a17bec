import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import { conAug, conAugViews, randomPermutation } from "./conaug.ts";
import { compare, fixturesRoot, fixtureTensor, HAVE_FIXTURES, readJson } from "./test_fixtures.ts";

for (const backend of ["cpu", "wasm"]) {
  Deno.test({
    name: `conaug: fixture parity (labels exact, lengths, images atol 1e-6) on ${backend}${
      HAVE_FIXTURES ? "" : " (SKIPPED: ../shared/fixtures is absent)"
    }`,
    ignore: !HAVE_FIXTURES,
  }, async () => {
    const root = fixturesRoot("ConAug parity");
    if (!root) return;
    if (backend === "wasm") await useWasm();
    else await tf.setBackend("cpu");
    const dir = `${root}conclr_conaug`;
    // deno-lint-ignore no-explicit-any
    const j = await readJson<any>(`${dir}/conaug.json`);
    const input = await fixtureTensor(j.inputs.images, dir);
    const before = tf.memory().numTensors;
    const nchw = tf.tensor4d(input.data as Float32Array, input.shape as [number, number, number, number]);
    const images = tf.transpose(nchw, [0, 2, 3, 1]) as tf.Tensor4D;
    assert.equal(j.cases.length, 6);
    for (const c of j.cases) {
      const labels = (await fixtureTensor(c.inputs.gt_labels_index, dir)).data as Int32Array;
      const lengths = (await fixtureTensor(c.inputs.gt_lengths, dir)).data as Int32Array;
      const view = conAug(images, { labels, lengths, texts: c.words }, c.permuted_indices, c.left);
      const expLabels = (await fixtureTensor(c.expected.new_gt_labels_index, dir)).data;
      const expLengths = (await fixtureTensor(c.expected.new_gt_lengths, dir)).data;
      assert.deepEqual(Array.from(view.labels), Array.from(expLabels), `${c.name}: labels`);
      assert.deepEqual(Array.from(view.lengths), Array.from(expLengths), `${c.name}: lengths`);
      assert.deepEqual(view.texts, c.expected.new_words, `${c.name}: texts`);
      const expImages = await fixtureTensor(c.expected.augmented_images, dir);
      const out = tf.transpose(view.images, [0, 3, 1, 2]);
      const cmp = compare(out.dataSync(), expImages.data, 1e-6, 0);
      assert.ok(cmp.ok, `${c.name}: images max abs diff ${cmp.maxAbs}`);
      console.log(`  ${backend} ${c.name}: labels exact, images max |Δ| ${cmp.maxAbs.toExponential(2)}`);
      tf.dispose([view.images, out]);
    }
    tf.dispose([nchw, images]);
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  });
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

Deno.test("conaug: seeded views are deterministic, permutations valid, shapes kept", async () => {
  await tf.setBackend("cpu");
  const perm = randomPermutation(7, lcg(3));
  assert.deepEqual([...perm].sort(), [0, 1, 2, 3, 4, 5, 6]);
  const batch = {
    labels: Int32Array.from([1, 2, 0, 0, 3, 0, 0, 0, 4, 5, 6, 0]),
    lengths: Int32Array.from([3, 2, 4]),
    texts: ["ab", "c", "def"],
  };
  const images = tf.randomUniform([3, 4, 6, 1], 0, 1, "float32", 1) as tf.Tensor4D;
  const a = conAugViews(images, batch, lcg(42));
  const b = conAugViews(images, batch, lcg(42));
  assert.equal(a.length, 2);
  for (let v = 0; v < 2; v++) {
    assert.deepEqual(a[v].permutation, b[v].permutation);
    assert.equal(a[v].left, b[v].left);
    assert.deepEqual(a[v].labels, b[v].labels);
    assert.deepEqual(a[v].images.shape, [3, 4, 6, 1]);
    assert.deepEqual(Array.from(a[v].images.dataSync()), Array.from(b[v].images.dataSync()));
    // Max length 3 here: at most 3 characters, the last row null.
    for (let i = 0; i < 3; i++) assert.equal(a[v].labels[i * 4 + 3], 0);
  }
  tf.dispose([images, ...a.map((v) => v.images), ...b.map((v) => v.images)]);
});
