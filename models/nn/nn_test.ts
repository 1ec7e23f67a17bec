import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { fixtureExists, FIXTURES_DIR, positionalEncodingTable } from "../../testing/fixtures.ts";
import { assertClose } from "../../testing/fixtures.ts";
import { BatchNorm2d, batchNormTrain, Conv2d, dropout, EVAL, Linear, trainContext } from "./layers.ts";
import { ParamStore } from "./params.ts";
import { sinusoidalTable } from "./positional.ts";
import { resizeNearest } from "./resize.ts";
import { loadStateDict, stateDict } from "./state.ts";

/** Small reference checks run on the cpu backend (set per test: test files may share a process). */
const onCpu = (fn: () => void | Promise<void>) => async () => {
  await tf.setBackend("cpu");
  await fn();
};

Deno.test(
  "state: PyTorch layouts in, tfjs layouts inside, PyTorch layouts out",
  onCpu(() => {
    const store = new ParamStore(1);
    const root = store.root();
    const conv = new Conv2d(root.child("conv"), { inChannels: 2, outChannels: 3, kernel: 3, padding: 1 });
    const lin = new Linear(root.child("fc"), 4, 5);
    const bn = new BatchNorm2d(root.child("bn"), 3);
    const convW = Float32Array.from({ length: 3 * 2 * 3 * 3 }, (_, i) => i);
    const linW = Float32Array.from({ length: 5 * 4 }, (_, i) => -i);
    const state = stateDict(store);
    assert.deepEqual([...state.keys()], [
      "conv.weight",
      "conv.bias",
      "fc.weight",
      "fc.bias",
      "bn.weight",
      "bn.bias",
      "bn.running_mean",
      "bn.running_var",
    ]);
    state.set("conv.weight", { dtype: "F32", shape: [3, 2, 3, 3], data: convW });
    state.set("fc.weight", { dtype: "F32", shape: [5, 4], data: linW });
    state.set("bn.num_batches_tracked", { dtype: "I32", shape: [], data: new Int32Array(1) });
    loadStateDict(store, state);
    // OIHW [o, i, kh, kw] → HWIO [kh, kw, i, o].
    const w = conv.weight.arraySync() as number[][][][];
    assert.equal(w[2][1][0][1], 1 * 18 + 0 * 9 + 2 * 3 + 1);
    assert.deepEqual(lin.weight.shape, [4, 5]);
    assert.equal((lin.weight.arraySync() as number[][])[3][2], -(2 * 4 + 3));
    const back = stateDict(store);
    assert.deepEqual(back.get("conv.weight")!.data, convW);
    assert.deepEqual(back.get("fc.weight")!.data, linW);
    assert.equal(bn.runningVar.dataSync()[0], 1);
    assert.throws(() => loadStateDict(store, new Map([["fc.weight", back.get("conv.weight")!]])), /shape/);
    assert.throws(() => loadStateDict(store, new Map([["nope", back.get("fc.bias")!]])), /does not have: nope/);
    assert.throws(() => loadStateDict(store, new Map([["fc.bias", back.get("fc.bias")!]])), /missing 7 entries/);
    store.dispose();
  }),
);

Deno.test(
  "BatchNorm2d: train mode normalises with batch statistics and updates running stats (momentum 0.1)",
  onCpu(() => {
    const store = new ParamStore(1);
    const bn = new BatchNorm2d(store.root(), 3);
    const x = tf.add(tf.mul(tf.randomNormal([2, 4, 5, 3], 0, 1, "float32", 9), [1, 2, 3]), [0.5, -1, 2]) as tf.Tensor4D;
    const y = bn.apply(x, trainContext(1));
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    assertClose("mean", mean.dataSync(), [0, 0, 0], 1e-5);
    assertClose("var", variance.dataSync(), [1, 1, 1], 1e-3);
    const m = tf.moments(x, [0, 1, 2]);
    const n = 2 * 4 * 5;
    assertClose("running_mean", bn.runningMean.dataSync(), tf.mul(m.mean, 0.1).dataSync(), 1e-6);
    assertClose(
      "running_var",
      bn.runningVar.dataSync(),
      tf.add(0.9, tf.mul(m.variance, 0.1 * n / (n - 1))).dataSync(),
      1e-5,
    );
    // Eval mode uses the running statistics.
    const e = bn.apply(x, EVAL);
    const want = tf.div(tf.sub(x, bn.runningMean), tf.sqrt(tf.add(bn.runningVar, 1e-5)));
    assertClose("eval", e.dataSync(), want.dataSync(), 1e-5);
    store.dispose();
  }),
);

Deno.test(
  "dropout: identity in eval, seeded in train",
  onCpu(() => {
    const x = tf.ones([1000]);
    assert.equal(dropout(x, 0.5, EVAL), x);
    const a = dropout(x, 0.5, trainContext(3)).dataSync();
    const b = dropout(x, 0.5, trainContext(3)).dataSync();
    assert.deepEqual(a, b);
    const kept = a.filter((v) => v !== 0);
    assert.ok(kept.length > 400 && kept.length < 600);
    assert.ok(kept.every((v) => v === 2));
  }),
);

/** Nearest index map src = floor(dst·in/out). */
const src = (dst: number, inSize: number, outSize: number) => Math.floor((dst * inSize) / outSize);

for (const [h, w, oh, ow] of [[2, 3, 4, 6], [2, 3, 3, 5], [1, 2, 8, 32]]) {
  Deno.test(
    `resizeNearest ${h}×${w} → ${oh}×${ow}: PyTorch indexing, gradient right for batch 2`,
    onCpu(() => {
      const b = 2, c = 2;
      const x = tf.randomNormal([b, h, w, c], 0, 1, "float32", 4) as tf.Tensor4D;
      const y = resizeNearest(x, oh, ow);
      const ref = tf.image.resizeNearestNeighbor(x, [oh, ow], false, false);
      assert.deepEqual(y.dataSync(), ref.dataSync());
      const weights = tf.randomNormal([b, oh, ow, c], 0, 1, "float32", 5);
      const g = tf.grad((t) => tf.sum(tf.mul(resizeNearest(t as tf.Tensor4D, oh, ow), weights)))(x);
      const wv = weights.dataSync(), want = new Float32Array(b * h * w * c);
      for (let n = 0; n < b; n++) {
        for (let i = 0; i < oh; i++) {
          for (let j = 0; j < ow; j++) {
            for (let k = 0; k < c; k++) {
              want[((n * h + src(i, h, oh)) * w + src(j, w, ow)) * c + k] += wv[((n * oh + i) * ow + j) * c + k];
            }
          }
        }
      }
      assertClose("grad", g.dataSync(), want, 1e-5);
    }),
  );
}

Deno.test(
  "Conv2d: unequal strides with padding (tfjs numeric-pad workaround)",
  onCpu(() => {
    const store = new ParamStore(2);
    const conv = new Conv2d(store.root(), { inChannels: 2, outChannels: 3, kernel: 3, stride: [1, 2], padding: 1 });
    const x = tf.randomNormal([2, 8, 32, 2], 0, 1, "float32", 6) as tf.Tensor4D;
    const y = conv.apply(x);
    assert.deepEqual(y.shape, [2, 8, 16, 3]);
    const ref = tf.add(
      tf.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), conv.weight as tf.Tensor4D, [1, 2], "valid"),
      conv.bias!,
    );
    assertClose("conv", y.dataSync(), ref.dataSync(), 1e-6);
    store.dispose();
  }),
);

const PE = "abinet_common/positional_encoding.safetensors";
Deno.test({ name: "sinusoidal table matches PyTorch's float32 table", ignore: !fixtureExists(PE) }, async () => {
  const table = await positionalEncodingTable();
  const mine = sinusoidalTable(256, 512);
  // PyTorch's float32 exp of the frequencies is off by an ulp here and there; the README measures a
  // float64 table at ≤ 1.4e-5 overall and ≤ 1.6e-6 for rows < 26.
  const d = assertClose("pe", mine, table.data, 1.4e-5);
  let first26 = 0;
  for (let i = 0; i < 26 * 512; i++) first26 = Math.max(first26, Math.abs(mine[i] - table.data[i]));
  assert.ok(first26 <= 1.6e-6, `rows < 26: ${first26}`);
  console.log(`pe: max |diff| ${d.maxAbs.toExponential(2)} (rows < 26: ${first26.toExponential(2)})`);
});
if (!fixtureExists(PE)) console.log(`note: ${FIXTURES_DIR}${PE} is absent; the pe table test is skipped`);

Deno.test(
  "batchNormTrain: custom gradient equals autograd of the composed ops",
  onCpu(() => {
    const x = tf.add(tf.mul(tf.randomNormal([3, 4, 5, 2], 0, 1, "float32", 11), [1, 3]), [0.5, -2]) as tf.Tensor4D;
    const w = tf.tensor1d([1.2, 0.7]), b = tf.tensor1d([0.1, -0.3]);
    const dy = tf.randomNormal([3, 4, 5, 2], 0, 1, "float32", 12);
    const plain = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
      const m = tf.mean(xx, [0, 1, 2]);
      const c = tf.sub(xx, m);
      const v = tf.mean(tf.square(c), [0, 1, 2]);
      return tf.sum(tf.mul(tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(v, 1e-5))), ww), bb), dy));
    };
    const custom = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(batchNormTrain(xx as tf.Tensor4D, ww, bb, 1e-5).y, dy));
    const want = tf.grads(plain)([x, w, b]);
    const got = tf.grads(custom)([x, w, b]);
    ["dx", "dw", "db"].forEach((name, i) => assertClose(name, got[i].dataSync(), want[i].dataSync(), 1e-5, 1e-5));
    const { mean, variance } = batchNormTrain(x, w, b, 1e-5);
    const m = tf.moments(x, [0, 1, 2]);
    assertClose("mean", mean.dataSync(), m.mean.dataSync(), 1e-6);
    assertClose("variance", variance.dataSync(), m.variance.dataSync(), 1e-5);
  }),
);
