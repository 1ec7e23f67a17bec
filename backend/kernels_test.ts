/**
 * strata's wasm kernels against the cpu backend: every registered kernel on
 * random shapes, gradients of a small conv + attention model, and a flat
 * tensor count across training steps.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { batchMatMulOrdered } from "./kernels/batch_mat_mul.ts";
import { FAST_KERNELS, MISSING_KERNELS } from "./kernels/mod.ts";
import { useWasm, wasmKernelSet } from "./wasm.ts";

type Arrays = Float32Array[];

function random(shape: number[], seed: number): Float32Array {
  let s = seed * 7919 + 17;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 1073741824 - 1;
  }
  return out;
}

/** Runs `f` on the cpu backend and on wasm (with strata's kernels) and returns both results. */
async function onBoth(f: () => tf.Tensor | tf.Tensor[]): Promise<[Arrays, Arrays]> {
  const run = () => {
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const values = list.map((t) => t.dataSync() as Float32Array);
    tf.dispose(list);
    return values;
  };
  await tf.setBackend("cpu");
  const cpu = run();
  await useWasm();
  const wasm = run();
  return [cpu, wasm];
}

function assertClose(expected: Arrays, actual: Arrays, what: string, tolerance = 1e-4): void {
  assert.equal(actual.length, expected.length, what);
  for (let j = 0; j < expected.length; j++) {
    assert.equal(actual[j].length, expected[j].length, `${what}: output ${j} size`);
    let scale = 1;
    for (const v of expected[j]) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < expected[j].length; i++) {
      const diff = Math.abs(actual[j][i] - expected[j][i]);
      if (!(diff <= tolerance * scale)) {
        assert.fail(`${what}: output ${j}[${i}] = ${actual[j][i]}, cpu ${expected[j][i]} (scale ${scale})`);
      }
    }
  }
}

type ConvCase = { x: number[]; k: number; co: number; stride: number; pad: "same" | "valid" };

const CONV_CASES: ConvCase[] = [];
for (const [b, h, w, ci] of [[1, 7, 9, 3], [3, 8, 10, 4], [2, 5, 5, 1], [2, 11, 6, 6]]) {
  for (const k of [1, 3]) {
    for (const stride of [1, 2]) {
      for (const pad of ["same", "valid"] as const) CONV_CASES.push({ x: [b, h, w, ci], k, co: 5, stride, pad });
    }
  }
}
CONV_CASES.push({ x: [2, 9, 9, 3], k: 5, co: 2, stride: 3, pad: "same" });
CONV_CASES.push({ x: [2, 8, 12, 3], k: 2, co: 4, stride: 2, pad: "valid" });

function convInputs(c: ConvCase, seed: number) {
  const x = tf.tensor4d(random(c.x, seed), c.x as [number, number, number, number]);
  const filterShape: [number, number, number, number] = [c.k, c.k, c.x[3], c.co];
  const filter = tf.tensor4d(random(filterShape, seed + 1), filterShape);
  const yShape = tf.conv2d(x, filter, c.stride, c.pad).shape;
  const dy = tf.tensor(random(yShape, seed + 2), yShape);
  return { x, filter, dy, filterShape };
}

Deno.test("Conv2DBackpropFilter matches cpu", async () => {
  for (const [i, c] of CONV_CASES.entries()) {
    const [cpu, wasm] = await onBoth(() => {
      const { x, dy, filterShape } = convInputs(c, i);
      return tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        strides: c.stride,
        pad: c.pad,
        dataFormat: "NHWC",
        filterShape,
      }) as tf.Tensor;
    });
    assertClose(cpu, wasm, `Conv2DBackpropFilter ${JSON.stringify(c)}`);
  }
});

Deno.test("Conv2DBackpropInput matches cpu", async () => {
  for (const [i, c] of CONV_CASES.entries()) {
    const [cpu, wasm] = await onBoth(() => {
      const { filter, dy } = convInputs(c, i);
      return tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, {
        strides: c.stride,
        pad: c.pad,
        dataFormat: "NHWC",
        inputShape: c.x,
      }) as tf.Tensor;
    });
    assertClose(cpu, wasm, `Conv2DBackpropInput ${JSON.stringify(c)}`);
  }
});

Deno.test("BatchMatMul matches cpu for every transpose combination and batch layout", async () => {
  const layouts: [number[], number[]][] = [
    [[5, 7], [7, 3]],
    [[1, 9], [9, 4]],
    [[3, 5, 7], [3, 7, 4]],
    [[1, 26, 8], [4, 8, 13]],
    [[4, 26, 8], [1, 8, 13]],
    [[2, 3, 5, 7], [2, 3, 7, 6]],
    [[2, 3, 5, 7], [7, 6]],
    [[6, 2, 16], [6, 16, 33]],
    [[3, 1, 5, 7], [3, 7, 4]],
  ];
  let seed = 0;
  for (const [as, bs] of layouts) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const swapLast = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
        const sa = tA ? swapLast(as) : as;
        const sb = tB ? swapLast(bs) : bs;
        seed += 2;
        const [cpu, wasm] = await onBoth(() =>
          tf.matMul(tf.tensor(random(sa, seed), sa), tf.tensor(random(sb, seed + 1), sb), tA, tB)
        );
        assertClose(cpu, wasm, `matMul [${sa}]·[${sb}] transposeA=${tA} transposeB=${tB}`);
      }
    }
  }
});

Deno.test("BatchMatMul's direct and swapped orders both match cpu", async () => {
  const layouts: [number[], number[]][] = [[[3, 5, 7], [3, 7, 4]], [[1, 26, 8], [4, 8, 13]], [[4, 6, 8], [1, 8, 3]], [[
    9,
    4,
  ], [4, 11]]];
  let seed = 100;
  for (const [as, bs] of layouts) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const swapLast = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
        const sa = tA ? swapLast(as) : as;
        const sb = tB ? swapLast(bs) : bs;
        seed += 2;
        const va = random(sa, seed);
        const vb = random(sb, seed + 1);
        await tf.setBackend("cpu");
        const expected = tf.tidy(() =>
          tf.matMul(tf.tensor(va, sa), tf.tensor(vb, sb), tA, tB).dataSync() as Float32Array
        );
        await useWasm();
        for (const order of ["direct", "swapped"] as const) {
          const a = tf.tensor(va, sa);
          const b = tf.tensor(vb, sb);
          const backend = tf.backend() as BackendWasm;
          const out = batchMatMulOrdered(
            { inputs: { a, b }, backend, attrs: { transposeA: tA, transposeB: tB } },
            order,
          );
          const actual = backend.readSync(out.dataId) as Float32Array;
          backend.disposeData(out.dataId);
          tf.dispose([a, b]);
          assertClose([expected], [actual], `${order} matMul [${sa}]·[${sb}] transposeA=${tA} transposeB=${tB}`);
        }
      }
    }
  }
});

Deno.test("Sum and Mean (leading axes and others), Identity, Cast and Slice match cpu", async () => {
  const shape = [3, 4, 5, 6];
  const [cpu, wasm] = await onBoth(() => {
    const x = tf.tensor(random(shape, 9), shape);
    return [
      tf.sum(x, [0, 1, 2]),
      tf.sum(x, 0),
      tf.sum(x, [1, 0], true),
      tf.mean(x, [0, 1, 2]),
      tf.mean(x, [0, 1], true),
      tf.sum(x, [1, 2]),
      tf.mean(x, -1),
      tf.sum(x),
      tf.clone(x),
      tf.cast(x, "float32"),
      tf.cast(tf.cast(tf.mul(x, 10), "int32"), "float32"),
      tf.slice(x, [1, 0, 2, 1], [2, 4, 3, 4]),
      tf.slice(x, [0, 1, 0, 0], [3, 2, 5, 6]),
      tf.slice(x, [2, 3, 4, 5], [1, 1, 1, 1]),
      tf.slice(x, [0, 0, 0, 3], [-1, -1, -1, 3]),
      ...tf.split(tf.reshape(x, [60, 6]), [1, 2, 3], 1),
      tf.cast(tf.slice(tf.cast(tf.mul(x, 10), "int32"), [1, 1, 1, 1], [2, 2, 2, 2]), "float32"),
      tf.slice(tf.reshape(x, [360]), [7], [100]),
    ];
  });
  assertClose(cpu, wasm, "reductions, identity, cast, slice");
  await useWasm();
  const x = tf.tensor1d([1, 2, 3]);
  const y = tf.clone(x);
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3], "a clone outlives its source");
  y.dispose();
});

Deno.test("the stock kernels come back with useWasm({ kernels: 'none' }) and strata's with useWasm()", async () => {
  await useWasm({ kernels: "none" });
  assert.equal(wasmKernelSet(), "none");
  for (const k of MISSING_KERNELS) assert.equal(tf.getKernel(k.kernelName, "wasm"), undefined, k.kernelName);
  for (const k of FAST_KERNELS) {
    assert.notEqual(tf.getKernel(k.kernelName, "wasm")?.kernelFunc, k.kernelFunc, k.kernelName);
  }
  const stock = tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([2, 3]), false, true).dataSync());
  assert.deepEqual(Array.from(stock), [3, 3, 3, 3]);
  await useWasm({ kernels: "missing-only" });
  for (const k of MISSING_KERNELS) {
    assert.equal(tf.getKernel(k.kernelName, "wasm")?.kernelFunc, k.kernelFunc, k.kernelName);
  }
  await useWasm();
  assert.equal(wasmKernelSet(), "all");
  for (const k of [...MISSING_KERNELS, ...FAST_KERNELS]) {
    assert.equal(tf.getKernel(k.kernelName, "wasm")?.kernelFunc, k.kernelFunc, k.kernelName);
  }
});

Deno.test("UnsortedSegmentSum matches cpu (float32, int32, out-of-range ids)", async () => {
  const [cpu, wasm] = await onBoth(() => [
    tf.unsortedSegmentSum(tf.tensor(random([7, 3], 1), [7, 3]), tf.tensor1d([0, 2, 2, 5, 0, 3, 1], "int32"), 4),
    tf.cast(
      tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3, 4, 5], "int32"), tf.tensor1d([1, 1, 0, 2, 2], "int32"), 3),
      "float32",
    ),
  ]);
  assertClose(cpu, wasm, "UnsortedSegmentSum");
  // The gradient of gather goes through UnsortedSegmentSum.
  const [gCpu, gWasm] = await onBoth(() => {
    const table = tf.tensor(random([6, 4], 3), [6, 4]);
    const ids = tf.tensor1d([0, 3, 3, 5, 1], "int32");
    return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), tf.tensor(random([5, 4], 4), [5, 4]))))(table);
  });
  assertClose(gCpu, gWasm, "gather gradient");
});

/** A small conv + attention model: two convs (stride 2, 1×1), self-attention, position attention, dense, CE. */
function smallModel(seed: number) {
  const shapes: Record<string, number[]> = {
    c1: [3, 3, 3, 8],
    c2: [1, 1, 8, 8],
    c3: [3, 3, 8, 8],
    wq: [8, 8],
    wk: [8, 8],
    wv: [8, 8],
    pq: [5, 8],
    fc: [8, 6],
    bias: [6],
  };
  const weights: Record<string, tf.Variable> = {};
  let s = seed;
  for (const [name, shape] of Object.entries(shapes)) {
    weights[name] = tf.variable(tf.tensor(random(shape, s++).map((v) => v * 0.5), shape), true, `${name}_${seed}`);
  }
  const images = tf.tensor4d(random([2, 8, 12, 3], s++), [2, 8, 12, 3]);
  const labels = tf.tensor1d([0, 1, 2, 3, 4, 5, 0, 1, 2, 3], "int32");
  const loss = () =>
    tf.tidy(() => {
      const w = weights;
      let h = tf.relu(tf.conv2d(images, w.c1 as tf.Tensor4D, 2, "same")); // [2, 4, 6, 8]
      h = tf.relu(tf.add(h, tf.conv2d(h, w.c2 as tf.Tensor4D, 1, "same")));
      h = tf.relu(tf.conv2d(h, w.c3 as tf.Tensor4D, 1, "same"));
      const seq = tf.reshape(h, [2, 24, 8]);
      const flat = tf.reshape(seq, [48, 8]);
      const heads = (t: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(t, [2, 24, 2, 4]), [0, 2, 1, 3]), [4, 24, 4]);
      const q = heads(tf.matMul(flat, w.wq));
      const k = heads(tf.matMul(flat, w.wk));
      const v = heads(tf.matMul(flat, w.wv));
      const att = tf.softmax(tf.div(tf.matMul(q, k, false, true), 2));
      const ctx = tf.reshape(tf.transpose(tf.reshape(tf.matMul(att, v), [2, 2, 24, 4]), [0, 2, 1, 3]), [2, 24, 8]);
      const enc = tf.add(seq, ctx);
      const queries = tf.tile(tf.reshape(w.pq, [1, 5, 8]), [2, 1, 1]);
      const pos = tf.softmax(tf.matMul(queries, enc, false, true)); // [2, 5, 24]
      const feats = tf.reshape(tf.matMul(pos, enc), [10, 8]);
      const logits = tf.add(tf.matMul(feats, w.fc), w.bias);
      const oneHot = tf.cast(tf.oneHot(labels, 6), "float32");
      return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
    });
  return { weights, images, labels, loss };
}

Deno.test("gradients of a small conv + attention model match cpu", async () => {
  const [cpu, wasm] = await onBoth(() => {
    const m = smallModel(11);
    const { value, grads } = tf.variableGrads(m.loss);
    const out = [value, ...Object.values(m.weights).map((w) => grads[w.name])];
    tf.dispose(Object.values(m.weights));
    return out;
  });
  assertClose(cpu, wasm, "small model loss and gradients", 2e-4);
});

Deno.test("tensor count stays flat across 100 training steps on wasm", async () => {
  await useWasm();
  const m = smallModel(5);
  const optimizer = tf.train.adam(1e-3);
  const step = () => tf.dispose(optimizer.minimize(m.loss, true) ?? []);
  for (let i = 0; i < 3; i++) step();
  const tensors = tf.memory().numTensors;
  const dataIds = tf.engine().backend.numDataIds();
  for (let i = 0; i < 100; i++) step();
  assert.equal(tf.memory().numTensors, tensors, "tensor count after 100 steps");
  assert.equal(tf.engine().backend.numDataIds(), dataIds, "wasm data ids after 100 steps");
  optimizer.dispose();
  tf.dispose([...Object.values(m.weights), m.images, m.labels]);
});
