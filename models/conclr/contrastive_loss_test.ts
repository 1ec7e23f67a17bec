import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import { contrastiveLoss, positiveWeights } from "./contrastive_loss.ts";
import { compare, fixturesRoot, type FixtureTensor, fixtureTensor, HAVE_FIXTURES, readJson } from "./test_fixtures.ts";

const CASES = ["words", "no_positive_chars", "all_padding_row", "conaug_views", "quirk_zero_similarity_positive"];

interface Case {
  name: string;
  embed1: FixtureTensor;
  embed2: FixtureTensor;
  labels1: Int32Array;
  labels2: Int32Array;
  loss: number;
  grad1: Float32Array;
  grad2: Float32Array;
  perRow: Float32Array;
  tau: number;
}

async function loadCases(): Promise<Case[] | undefined> {
  const root = fixturesRoot("contrastive loss parity");
  if (!root) return undefined;
  const dir = `${root}conclr_contrastive_loss`;
  const out: Case[] = [];
  for (const name of CASES) {
    // deno-lint-ignore no-explicit-any
    const j = await readJson<any>(`${dir}/${name}.json`);
    const t = (spec: unknown) => fixtureTensor(spec as never, dir);
    out.push({
      name,
      embed1: await t(j.inputs.embed1),
      embed2: await t(j.inputs.embed2),
      labels1: (await t(j.inputs.labels1)).data as Int32Array,
      labels2: (await t(j.inputs.labels2)).data as Int32Array,
      loss: (await t(j.expected.loss)).data[0],
      grad1: (await t(j.expected.grad_embed1)).data as Float32Array,
      grad2: (await t(j.expected.grad_embed2)).data as Float32Array,
      perRow: (await t(j.expected.per_row_loss)).data as Float32Array,
      tau: j.config.temprature,
    });
  }
  return out;
}

function checkCase(c: Case, backend: string): string {
  const e1 = tf.tensor3d(c.embed1.data as Float32Array, c.embed1.shape as [number, number, number]);
  const e2 = tf.tensor3d(c.embed2.data as Float32Array, c.embed2.shape as [number, number, number]);
  const f = (a: tf.Tensor, b: tf.Tensor) =>
    contrastiveLoss(a as tf.Tensor3D, b as tf.Tensor3D, c.labels1, c.labels2, { temperature: c.tau });
  const { value, grads } = tf.valueAndGrads(f)([e1, e2]);
  const loss = value.dataSync()[0];
  const lossCmp = compare([loss], [c.loss], 1e-5, 1e-5);
  assert.ok(lossCmp.ok, `${backend} ${c.name}: loss ${loss} vs ${c.loss}`);
  const g1 = compare(grads[0].dataSync(), c.grad1, 1e-6, 1e-4);
  const g2 = compare(grads[1].dataSync(), c.grad2, 1e-6, 1e-4);
  assert.ok(g1.ok, `${backend} ${c.name}: grad_embed1 max abs diff ${g1.maxAbs} (first bad index ${g1.worst})`);
  assert.ok(g2.ok, `${backend} ${c.name}: grad_embed2 max abs diff ${g2.maxAbs} (first bad index ${g2.worst})`);
  // Per-row reference (B = 1 calls).
  const [batch, positions] = c.embed1.shape;
  for (let b = 0; b < batch; b++) {
    const row = tf.tidy(() =>
      contrastiveLoss(
        tf.slice(e1, [b, 0, 0], [1, -1, -1]),
        tf.slice(e2, [b, 0, 0], [1, -1, -1]),
        c.labels1.subarray(b * positions, (b + 1) * positions),
        c.labels2.subarray(b * positions, (b + 1) * positions),
        { temperature: c.tau },
      ).dataSync()[0]
    );
    assert.ok(compare([row], [c.perRow[b]], 1e-5, 1e-5).ok, `${backend} ${c.name}: row ${b} ${row} vs ${c.perRow[b]}`);
  }
  tf.dispose([e1, e2, value, ...grads]);
  return `${c.name}: loss |Δ| ${lossCmp.maxAbs.toExponential(2)}, grad1 ${g1.maxAbs.toExponential(2)}, grad2 ${
    g2.maxAbs.toExponential(2)
  }`;
}

Deno.test("contrastive loss: positive weights follow the anchor rules", () => {
  // One row, T = 3: view1 [a, a, 0], view2 [b, a, 0]: a-anchors have 2 positives, b none, 0 never.
  const w = positiveWeights(Int32Array.from([1, 1, 0]), Int32Array.from([2, 1, 0]), 1, 3);
  const n = 6;
  const row = (m: number) => Array.from(w.subarray(m * n, (m + 1) * n));
  assert.deepEqual(row(0), [0, 0.5, 0, 0, 0.5, 0]);
  assert.deepEqual(row(1), [0.5, 0, 0, 0, 0.5, 0]);
  assert.deepEqual(row(2), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(row(3), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(row(4), [0.5, 0.5, 0, 0, 0, 0]);
});

for (const backend of ["cpu", "wasm"]) {
  Deno.test({
    name: `contrastive loss: fixture parity (loss, gradients, per-row) on ${backend}${
      HAVE_FIXTURES ? "" : " (SKIPPED: ../shared/fixtures is absent)"
    }`,
    ignore: !HAVE_FIXTURES,
  }, async () => {
    const cases = await loadCases();
    if (!cases) return;
    if (backend === "wasm") await useWasm();
    else await tf.setBackend("cpu");
    const before = tf.memory().numTensors;
    for (const c of cases) console.log(`  ${backend} ${checkCase(c, backend)}`);
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  });
}
