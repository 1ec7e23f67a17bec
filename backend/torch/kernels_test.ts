/**
 * Every torch kernel against tfjs's `cpu` backend on random inputs: outputs and the gradients of
 * Σ w·f(x) (w random) with respect to every float input, including edge shapes (stride 2 with odd sizes,
 * 1×1 convs, batch 1, empty dims). Skipped visibly when the shim is not built (no libtorch).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { currentBuild } from "./build.ts";
import { activateTorch, TORCH_KERNELS, torchBackend } from "./mod.ts";
import { deviceDropoutMask, fusedBatchNormTrain, fusedLayerNorm } from "./fused.ts";

const build = await currentBuild();
const SKIP = build ? "" : " (SKIPPED: the libtorch shim is not built; run `deno task setup` with libtorch installed)";

type Spec = { shape: number[]; dtype?: "float32" | "int32" | "bool"; values?: number[]; grad?: boolean; lo?: number };
interface Case {
  name: string;
  inputs: Spec[];
  fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
  tol?: number;
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

function hostValues(spec: Spec, rnd: () => number): number[] {
  if (spec.values) return spec.values;
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const lo = spec.lo ?? -2;
  return Array.from({ length: n }, () => {
    const r = rnd();
    if (spec.dtype === "bool") return r > 0.5 ? 1 : 0;
    if (spec.dtype === "int32") return Math.floor(r * 7) - 3;
    return lo + r * (2 - lo);
  });
}

interface Result {
  outs: { shape: number[]; dtype: string; data: number[] }[];
  grads: number[][];
}

async function evaluate(c: Case, backend: string): Promise<Result> {
  await tf.setBackend(backend);
  const rnd = lcg(c.name.length * 7919 + 17);
  const values = c.inputs.map((s) => hostValues(s, rnd));
  const before = tf.memory().numTensors;
  const xs = c.inputs.map((s, i) => tf.tensor(values[i], s.shape, s.dtype ?? "float32"));
  const outs = tf.tidy(() => {
    const o = c.fn(...xs);
    return Array.isArray(o) ? o : [o];
  });
  const result: Result = { outs: [], grads: [] };
  for (const o of outs) result.outs.push({ shape: o.shape, dtype: o.dtype, data: Array.from(await o.data()) });
  const gradIdx = c.inputs.map((s, i) => ((s.dtype ?? "float32") === "float32" && s.grad !== false ? i : -1))
    .filter((i) => i >= 0);
  const floatOut = outs.every((o) => o.dtype === "float32");
  if (gradIdx.length > 0 && floatOut) {
    const weights = outs.map((o) => {
      const r = lcg(o.size + 3);
      return tf.tensor(Array.from({ length: o.size }, () => r() - 0.5), o.shape);
    });
    const grads = tf.tidy(() =>
      tf.grads((...gs: tf.Tensor[]) => {
        const all = xs.slice();
        gradIdx.forEach((j, k) => (all[j] = gs[k]));
        const o = c.fn(...all);
        const list = Array.isArray(o) ? o : [o];
        return tf.addN(list.map((t, k) => tf.sum(tf.mul(t, weights[k])))) as tf.Scalar;
      })(gradIdx.map((j) => xs[j]))
    );
    for (const g of grads) result.grads.push(Array.from(await g.data()));
    tf.dispose([...grads, ...weights]);
  }
  tf.dispose([...outs, ...xs]);
  assert.equal(tf.memory().numTensors, before, `${c.name} on ${backend}: tensors leaked`);
  return result;
}

function close(name: string, a: number[], b: number[], tol: number): void {
  assert.equal(a.length, b.length, `${name}: ${a.length} vs ${b.length} values`);
  let scale = 1;
  for (const v of b) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i])) {
      assert.ok(Number.isNaN(a[i]), `${name}[${i}]: ${a[i]} vs NaN`);
      continue;
    }
    assert.ok(Math.abs(a[i] - b[i]) <= tol * scale, `${name}[${i}]: torch ${a[i]} vs cpu ${b[i]} (tol ${tol * scale})`);
  }
}

const f = (shape: number[], extra: Partial<Spec> = {}): Spec => ({ shape, ...extra });
const i = (shape: number[], values?: number[]): Spec => ({ shape, dtype: "int32", values });

const UNARY: [string, (x: tf.Tensor) => tf.Tensor, number?][] = [
  ["neg", tf.neg],
  ["exp", tf.exp],
  ["log", tf.log, 0.05],
  ["sqrt", tf.sqrt, 0.05],
  ["rsqrt", tf.rsqrt, 0.05],
  ["square", tf.square],
  ["abs", tf.abs],
  ["sign", tf.sign],
  ["floor", tf.floor],
  ["ceil", tf.ceil],
  ["round", tf.round],
  ["relu", tf.relu],
  ["relu6", (x) => tf.relu6(tf.mul(x, 4))],
  ["sigmoid", tf.sigmoid],
  ["tanh", tf.tanh],
  ["sin", tf.sin],
  ["cos", tf.cos],
  ["erf", tf.erf],
  ["reciprocal", tf.reciprocal, 0.05],
  ["log1p", tf.log1p, 0.05],
  ["expm1", tf.expm1],
  ["softplus", tf.softplus],
  ["elu", tf.elu],
  ["selu", tf.selu],
  ["atan", tf.atan],
  ["leakyRelu", (x) => tf.leakyRelu(x, 0.3)],
  ["step", (x) => tf.step(x, 0.25)],
  ["clipByValue", (x) => tf.clipByValue(x, -0.5, 0.7)],
  ["logSoftmax", (x) => tf.logSoftmax(x)],
  ["softmax", (x) => tf.softmax(x)],
];

const CASES: Case[] = [
  ...UNARY.map(([name, fn, lo]): Case => ({ name, inputs: [f([3, 5], lo ? { lo } : {})], fn })),
  {
    name: "isNaN/logicalNot",
    inputs: [f([6], { grad: false })],
    fn: (x) => [tf.cast(tf.logicalNot(tf.isNaN(x)), "float32")],
  },
  ...(["add", "sub", "mul", "div", "maximum", "minimum", "squaredDifference"] as const).map((op): Case => ({
    name: `${op} broadcast`,
    // tfjs's own Maximum/Minimum/SquaredDifference gradients do not reduce over broadcast axes.
    inputs: [
      f([2, 3, 4]),
      f(["add", "sub", "mul", "div"].includes(op) ? [3, 1] : [2, 3, 4], op === "div" ? { lo: 0.5 } : {}),
    ],
    fn: (a, b) => tf[op](a, b),
  })),
  { name: "pow", inputs: [f([4, 3], { lo: 0.5 }), f([3], { lo: 0.5 })], fn: (a, b) => tf.pow(a, b) },
  { name: "atan2", inputs: [f([4, 3]), f([4, 3], { lo: 0.5 })], fn: (a, b) => tf.atan2(a, b) },
  { name: "scalar operand", inputs: [f([2, 3]), f([])], fn: (a, b) => tf.mul(tf.add(a, b), tf.scalar(3)) },
  { name: "int arithmetic", inputs: [i([5]), i([5], [1, 2, -3, 4, 2])], fn: (a, b) => [tf.add(a, b), tf.mul(a, b)] },
  { name: "floorDiv/mod", inputs: [i([5]), i([5], [2, 3, -2, 4, 5])], fn: (a, b) => [tf.floorDiv(a, b), tf.mod(a, b)] },
  {
    name: "comparisons",
    inputs: [f([3, 4]), f([4])],
    fn: (a, b) =>
      [tf.equal, tf.notEqual, tf.greater, tf.greaterEqual, tf.less, tf.lessEqual].map((op) =>
        tf.cast(op(tf.round(a), tf.round(b)), "int32")
      ),
  },
  {
    name: "logical",
    inputs: [{ shape: [6], dtype: "bool" }, { shape: [6], dtype: "bool" }],
    fn: (a, b) => [tf.cast(tf.logicalAnd(a, b), "int32"), tf.cast(tf.logicalOr(a, b), "int32")],
  },
  {
    name: "where",
    inputs: [f([3, 4], { grad: false }), f([3, 4]), f([3, 4])],
    fn: (c, a, b) => tf.where(tf.greater(c, 0), a, b),
  },
  {
    name: "cast",
    inputs: [f([7])],
    fn: (x) => [tf.cast(tf.cast(tf.mul(x, 3), "int32"), "float32"), tf.cast(x, "bool")],
  },
  { name: "addN", inputs: [f([2, 3]), f([2, 3]), f([2, 3])], fn: (a, b, c) => tf.addN([a, b, c]) },
  { name: "prelu", inputs: [f([2, 3, 4]), f([4])], fn: (x, a) => tf.prelu(x, a) },
  // Reductions
  ...(["sum", "mean", "max", "min", "prod"] as const).flatMap((op): Case[] => [
    { name: `${op} axis 1`, inputs: [f([3, 4, 2])], fn: (x) => tf[op](x, 1) },
    { name: `${op} axes [0,2] keepDims`, inputs: [f([3, 4, 2])], fn: (x) => tf[op](x, [0, 2], true) },
    { name: `${op} all`, inputs: [f([3, 4])], fn: (x) => tf[op](x) },
  ]),
  { name: "sum int", inputs: [i([3, 4])], fn: (x) => tf.sum(x, 1) },
  {
    name: "all/any",
    inputs: [{ shape: [3, 4], dtype: "bool" }],
    fn: (x) => [tf.cast(tf.all(x, 1), "int32"), tf.cast(tf.any(x, 0), "int32")],
  },
  { name: "argMax/argMin", inputs: [f([3, 5])], fn: (x) => [tf.argMax(x, 1), tf.argMin(x, 0)] },
  { name: "cumsum last axis", inputs: [f([3, 4])], fn: (x) => tf.cumsum(x, 1) },
  {
    name: "cumsum variants",
    inputs: [f([3, 4], { grad: false })],
    fn: (x) => [tf.cumsum(x, 1), tf.cumsum(x, 0, true, false), tf.cumsum(x, 1, false, true)],
  },
  { name: "topk", inputs: [f([3, 6], { grad: false })], fn: (x) => tf.topk(x, 3).values },
  { name: "moments", inputs: [f([2, 3, 4])], fn: (x) => Object.values(tf.moments(x, [0, 1])) },
  // Shape and layout
  { name: "reshape/transpose", inputs: [f([2, 3, 4])], fn: (x) => tf.transpose(tf.reshape(x, [6, 4]), [1, 0]) },
  { name: "transpose 4-D", inputs: [f([2, 3, 4, 5])], fn: (x) => tf.transpose(x, [0, 3, 1, 2]) },
  { name: "slice", inputs: [f([4, 5, 3])], fn: (x) => tf.slice(x, [1, 0, 1], [2, -1, 2]) },
  {
    name: "stridedSlice",
    inputs: [f([6, 5, 4], { grad: false })],
    fn: (x) => [
      tf.stridedSlice(x, [1, 0, 0], [6, 5, 4], [2, 1, 3]),
      tf.stridedSlice(x, [5, 4, 0], [0, 0, 4], [-2, -1, 1]),
      tf.stridedSlice(x, [2, 0, 0], [3, 5, 4], [1, 1, 1], 0, 0, 0, 0, 1),
    ],
  },
  { name: "concat", inputs: [f([2, 3]), f([2, 1]), f([2, 0])], fn: (a, b, c) => tf.concat([a, b, c], 1) },
  { name: "stack/unstack", inputs: [f([2, 3]), f([2, 3])], fn: (a, b) => [tf.stack([a, b], 1), ...tf.unstack(a, 1)] },
  { name: "split", inputs: [f([2, 7])], fn: (x) => tf.split(x, [2, 4, 1], 1) },
  { name: "tile", inputs: [f([2, 3])], fn: (x) => tf.tile(x, [2, 3]) },
  { name: "pad", inputs: [f([2, 3])], fn: (x) => tf.pad(x, [[1, 0], [2, 3]], 0.5) },
  {
    name: "mirrorPad",
    inputs: [f([3, 4])],
    fn: (x) => [tf.mirrorPad(x, [[1, 2], [2, 1]], "reflect"), tf.mirrorPad(x, [[1, 1], [0, 2]], "symmetric")],
  },
  { name: "reverse", inputs: [f([3, 4])], fn: (x) => tf.reverse(x, [0, 1]) },
  { name: "broadcastTo", inputs: [f([1, 3])], fn: (x) => tf.broadcastTo(x, [4, 3]) },
  { name: "expandDims/squeeze", inputs: [f([3, 1, 2])], fn: (x) => tf.expandDims(tf.squeeze(x, [1]), 0) },
  { name: "gather axis 0", inputs: [f([5, 3]), i([4], [4, 0, 2, 2])], fn: (x, idx) => tf.gather(x, idx, 0) },
  {
    name: "gather axis 1 2-D indices",
    inputs: [f([2, 5, 3]), i([2, 2], [1, 4, 0, 0])],
    fn: (x, idx) => tf.gather(x, idx, 1),
  },
  {
    name: "gather batchDims",
    inputs: [f([2, 4, 3]), i([2, 2], [1, 3, 0, 2])],
    fn: (x, idx) => tf.gather(x, idx, 1, 1),
  },
  {
    name: "gatherND",
    inputs: [f([3, 4], { grad: false }), i([2, 2], [0, 1, 2, 3])],
    fn: (x, idx) => tf.gatherND(x, idx),
  },
  { name: "oneHot", inputs: [i([5], [0, 3, -1, 2, 9])], fn: (idx) => tf.oneHot(idx, 4) },
  {
    name: "unsortedSegmentSum",
    inputs: [f([5, 3]), i([5], [0, 2, 0, 1, 2])],
    fn: (x, s) => tf.unsortedSegmentSum(x, s as tf.Tensor1D, 3),
  },
  {
    name: "scatterND",
    inputs: [i([3, 1], [0, 2, 0]), f([3, 2], { grad: false })],
    fn: (idx, u) => tf.scatterND(idx, u, [4, 2]),
  },
  {
    name: "fill/zerosLike/onesLike/range",
    inputs: [f([2, 2])],
    fn: (x) => [tf.fill([2, 3], 2.5), tf.zerosLike(x), tf.onesLike(x), tf.range(1, 9, 2.5), tf.range(0, 5, 1, "int32")],
  },
  // Linear algebra
  ...[[false, false], [true, false], [false, true], [true, true]].map(([ta, tb]): Case => ({
    name: `matMul ta=${ta} tb=${tb}`,
    inputs: [f(ta ? [4, 3] : [3, 4]), f(tb ? [5, 4] : [4, 5])],
    fn: (a, b) => tf.matMul(a, b, ta, tb),
  })),
  { name: "batched matMul", inputs: [f([2, 3, 4]), f([2, 4, 5])], fn: (a, b) => tf.matMul(a, b, false, false) },
  { name: "batched matMul tb", inputs: [f([2, 3, 4]), f([2, 5, 4])], fn: (a, b) => tf.matMul(a, b, false, true) },
  {
    name: "fused matMul bias relu",
    inputs: [f([3, 4]), f([4, 5]), f([5])],
    fn: (a, b, c) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias: c, activation: "relu" }),
  },
  // Convolutions
  ...([
    ["3x3 s1 same", [2, 5, 6, 3], [3, 3, 3, 4], 1, "same"],
    ["3x3 s2 same odd", [2, 7, 9, 3], [3, 3, 3, 4], 2, "same"],
    ["3x3 s2 valid odd", [1, 7, 9, 2], [3, 3, 2, 3], 2, "valid"],
    ["1x1 s1", [2, 4, 4, 3], [1, 1, 3, 5], 1, "valid"],
    ["1x1 s2", [1, 5, 5, 3], [1, 1, 3, 2], 2, "same"],
    ["3x3 numeric pad 1", [2, 6, 5, 2], [3, 3, 2, 3], 1, 1],
    ["3x3 strides [1,2]", [2, 6, 8, 2], [3, 3, 2, 3], [1, 2], "valid"],
    ["batch 1 5x5", [1, 8, 8, 2], [5, 5, 2, 2], 2, "same"],
  ] as const).map(([name, xs, ws, s, pad]): Case => ({
    name: `conv2d ${name}`,
    inputs: [f([...xs]), f([...ws])],
    fn: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s as number, pad as "same"),
  })),
  {
    name: "conv2d dilation 2 (forward: tfjs has no dilated-conv gradient)",
    inputs: [f([1, 7, 7, 2], { grad: false }), f([3, 3, 2, 2], { grad: false })],
    fn: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same", "NHWC", 2),
  },
  {
    name: "fused conv2d bias relu",
    inputs: [f([2, 5, 5, 2]), f([3, 3, 2, 3]), f([3])],
    fn: (x, w, b) =>
      tf.fused.conv2d({
        x: x as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 1,
        pad: "same",
        bias: b,
        activation: "relu",
      }),
  },
  {
    name: "depthwiseConv2d",
    inputs: [f([2, 6, 6, 3]), f([3, 3, 3, 2])],
    fn: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "same"),
  },
  { name: "maxPool same s2", inputs: [f([2, 5, 7, 3])], fn: (x) => tf.maxPool(x as tf.Tensor4D, 3, 2, "same") },
  // tfjs's AvgPoolGrad divides by the full window where "same" padding cuts it (its forward does not): the
  // gradient is compared with valid padding only.
  {
    name: "avgPool same s2",
    inputs: [f([2, 5, 7, 3], { grad: false })],
    fn: (x) => tf.avgPool(x as tf.Tensor4D, 3, 2, "same"),
  },
  { name: "avgPool valid", inputs: [f([1, 6, 6, 2])], fn: (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, "valid") },
  {
    name: "batchNorm (inference)",
    inputs: [f([2, 3, 4]), f([4]), f([4], { lo: 0.5 }), f([4]), f([4])],
    fn: (x, m, v, o, s) => tf.batchNorm(x, m, v, o, s, 1e-3),
  },
  // Resizing. tfjs cpu's gradients are wrong for batch > 1 (nearest), non-square inputs (bilinear) and
  // half-pixel centres (nearest): gradients are compared where tfjs is right.
  ...([[false, false], [true, false], [false, true]] as const).flatMap(([ac, hp]): Case[] => [
    {
      name: `resizeBilinear ac=${ac} hp=${hp}`,
      inputs: [f([1, 4, 4, 2], { grad: !hp })],
      fn: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [7, 3], ac, hp),
    },
    {
      name: `resizeNearest ac=${ac} hp=${hp}`,
      inputs: [f([1, 4, 5, 2], { grad: !hp })],
      fn: (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [7, 8], ac, hp),
    },
  ]),
  {
    name: "resizeBilinear batch 3 forward",
    inputs: [f([3, 4, 4, 2], { grad: false })],
    fn: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [6, 8]),
  },
  // Losses as the models use them
  {
    name: "softmax cross-entropy",
    inputs: [f([4, 6]), i([4], [0, 5, 2, 2])],
    fn: (x, y) => tf.losses.softmaxCrossEntropy(tf.cast(tf.oneHot(y, 6), "float32"), x),
  },
];

Deno.test(`torch kernels match tfjs cpu: ${CASES.length} cases, outputs and gradients${SKIP}`, {
  ignore: !build,
}, async (t) => {
  await activateTorch("cpu");
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const ref = await evaluate(c, "cpu");
      const got = await evaluate(c, "torch");
      const tol = c.tol ?? 1e-4;
      assert.equal(got.outs.length, ref.outs.length);
      got.outs.forEach((o, k) => {
        assert.deepEqual(o.shape, ref.outs[k].shape, `${c.name} output ${k} shape`);
        assert.equal(o.dtype, ref.outs[k].dtype, `${c.name} output ${k} dtype`);
        close(`${c.name} output ${k}`, o.data, ref.outs[k].data, tol);
      });
      assert.equal(got.grads.length, ref.grads.length, `${c.name}: gradient count`);
      got.grads.forEach((g, k) => close(`${c.name} gradient ${k}`, g, ref.grads[k], tol));
    });
  }
  await tf.setBackend("cpu");
});

Deno.test(`torch resize gradients are the adjoints of the forward (where tfjs cpu's are wrong)${SKIP}`, {
  ignore: !build,
}, async () => {
  await activateTorch("cpu");
  // Resizing is linear, f(x) = Rx, so <Rᵀw, x> = <w, Rx> exactly: a check that needs no reference backend.
  for (const bilinear of [true, false]) {
    for (const [ac, hp] of [[false, true], [false, false], [true, false]]) {
      const x = tf.randomUniform([3, 5, 4, 2], -1, 1, "float32", 1) as tf.Tensor4D;
      const w = tf.randomUniform([3, 7, 9, 2], -1, 1, "float32", 2);
      const resize = (t: tf.Tensor) =>
        bilinear
          ? tf.image.resizeBilinear(t as tf.Tensor4D, [7, 9], ac, hp)
          : tf.image.resizeNearestNeighbor(t as tf.Tensor4D, [7, 9], ac, hp);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(resize(t), w)))(x);
      const lhs = (await tf.sum(tf.mul(g, x)).data())[0];
      const rhs = (await tf.sum(tf.mul(resize(x), w)).data())[0];
      assert.ok(Math.abs(lhs - rhs) < 1e-4 * Math.max(1, Math.abs(rhs)), `bilinear=${bilinear} ac=${ac} hp=${hp}`);
      tf.dispose([x, w, g]);
    }
  }
  await tf.setBackend("cpu");
});

Deno.test(`torch fused LayerNorm / BatchNorm match the composed ops, with gradients${SKIP}`, {
  ignore: !build,
}, async () => {
  const rnd = lcg(5);
  const xv = Array.from({ length: 2 * 3 * 4 * 5 }, () => rnd() * 4 - 2);
  const wv = Array.from({ length: 5 }, () => rnd() + 0.5);
  const bv = Array.from({ length: 5 }, () => rnd() - 0.5);
  const composed = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, axes: number[]) => {
    const { mean, variance } = tf.moments(x, axes, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), w), b);
  };
  const run = async (fused: boolean, kind: "ln" | "bn") => {
    const x = tf.tensor4d(xv, [2, 3, 4, 5]), w = tf.tensor1d(wv), b = tf.tensor1d(bv);
    const weights = tf.tensor4d(xv.map((v, k) => Math.sin(k + v)), [2, 3, 4, 5]);
    const fn = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
      if (!fused) return composed(xx, ww, bb, kind === "ln" ? [3] : [0, 1, 2]);
      return kind === "ln"
        ? fusedLayerNorm(xx, ww, bb, 1e-5)!
        : fusedBatchNormTrain(xx as tf.Tensor4D, ww, bb, 1e-5)!.y;
    };
    const { value, grads } = tf.valueAndGrads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(fn(xx, ww, bb), weights)) as tf.Scalar
    )([x, w, b]);
    const out = [await value.data(), ...(await Promise.all(grads.map((g) => g.data())))].map((a) => Array.from(a));
    tf.dispose([x, w, b, weights, value, ...grads]);
    return out;
  };
  for (const kind of ["ln", "bn"] as const) {
    await tf.setBackend("cpu");
    const ref = await run(false, kind);
    await activateTorch("cpu");
    const got = await run(true, kind);
    ref.forEach((r, k) => close(`${kind} part ${k}`, got[k], r, 1e-4));
  }
  await tf.setBackend("cpu");
});

Deno.test(`torch Step (ReLU's gradient): NaN kept, alpha elsewhere, on contiguous and strided inputs${SKIP}`, {
  ignore: !build,
}, async () => {
  await activateTorch("cpu");
  const x = tf.tensor2d([[NaN, -1, 0], [2, -0, 1e-30]]);
  const want = [NaN, 0.25, 0.25, 1, 0.25, 1];
  // The contiguous CPU fast path, then a permuted view (the composed ATen path).
  assert.deepEqual(Array.from(await tf.step(x, 0.25).data()), want);
  const strided = await tf.step(tf.transpose(x), 0.25).data();
  assert.deepEqual(Array.from(strided), [want[0], want[3], want[1], want[4], want[2], want[5]]);
  assert.deepEqual(Array.from(await tf.step(x).data()), [NaN, 0, 0, 1, 0, 1]);
  await tf.setBackend("cpu");
});

Deno.test(`torch dropout masks: drawn on the device, deterministic per seed, scaled by 1/(1 − rate)${SKIP}`, {
  ignore: !build,
}, async () => {
  await activateTorch("cpu");
  const a = deviceDropoutMask([200, 50], 0.25, 42)!;
  const b = deviceDropoutMask([200, 50], 0.25, 42)!;
  const c = deviceDropoutMask([200, 50], 0.25, 43)!;
  const [av, bv, cv] = await Promise.all([a.data(), b.data(), c.data()]);
  assert.deepEqual(av, bv, "same seed, same mask");
  assert.notDeepEqual(av, cv, "another seed, another mask");
  const kept = Array.from(av).filter((v) => v !== 0);
  assert.ok(kept.every((v) => Math.abs(v - 1 / 0.75) < 1e-6));
  assert.ok(Math.abs(kept.length / av.length - 0.75) < 0.03, `kept ${kept.length} of ${av.length}`);
  tf.dispose([a, b, c]);
  await tf.setBackend("cpu");
  assert.equal(deviceDropoutMask([2], 0.5, 1), undefined, "other backends draw their own masks");
});

Deno.test(`torch backend: reads, memory accounting, errors name the call${SKIP}`, { ignore: !build }, async () => {
  const info = await activateTorch("cpu");
  assert.equal(info.device, "cpu");
  const b = torchBackend()!;
  const before = b.libtorchMemory();
  const x = tf.tensor([1, 2, 3], [3], "int32");
  assert.deepEqual(Array.from(x.dataSync()), [1, 2, 3]);
  const bools = tf.tensor([true, false], [2], "bool");
  assert.deepEqual(Array.from(await bools.data()), [1, 0]);
  bools.dispose();
  const y = tf.reshape(x, [1, 3]);
  x.dispose();
  assert.deepEqual(Array.from(await y.data()), [1, 2, 3], "a view outlives the tensor it came from");
  y.dispose();
  tf.tidy(() => {
    tf.tensor([1, 2]);
  });
  assert.deepEqual(b.libtorchMemory().handles, before.handles);
  assert.throws(() => tf.matMul(tf.ones([2, 3]), tf.ones([2, 3])), /matMul|inner|shape/i);
  assert.ok(TORCH_KERNELS.length > 100, `${TORCH_KERNELS.length} kernels registered`);
  await tf.setBackend("cpu");
});
