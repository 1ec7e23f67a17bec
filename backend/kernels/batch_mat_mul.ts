/**
 * BatchMatMul for the wasm backend. The stock kernel runs XNNPACK only for a
 * batch-1 product without transposes and a scalar loop (~2 GFLOP/s) for
 * everything else, including every matMul gradient. Here transposed operands
 * are transposed explicitly first (a memory pass, cheap next to the product),
 * and then:
 * - b shared by all batches (batch 1): one XNNPACK product with the batches
 *   of a folded into its rows;
 * - otherwise: one XNNPACK product per batch on zero-copy views.
 * When it is cheaper (by a small cost model), it computes (op(b)ᵀ · op(a)ᵀ)ᵀ
 * instead, e.g. for few rows (position attention's 26 queries).
 */
import * as tf from "@tensorflow/tfjs";
import { type Attrs, dispose, type Info, type KernelArgs, reshape, sizeOf, stockKernel, transpose } from "./common.ts";
import { gemm, releaseView, tensorId, view } from "./views.ts";

export type Order = "auto" | "direct" | "swapped";

export function batchMatMul(args: KernelArgs): Info {
  return batchMatMulOrdered(args, "auto");
}

/** BatchMatMul with the order of the product chosen by the cost model ("auto") or forced (tests, benchmarks). */
export function batchMatMulOrdered({ inputs, backend, attrs }: KernelArgs, order: Order): Info {
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs as Attrs as { transposeA: boolean; transposeB: boolean };
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = sizeOf(outer);
  // Same batches, or one side's single batch shared; other broadcasts ([3, 1] with [3]) go to the stock kernel.
  const broadcastable = (batchA === batch || batchA === 1) && (batchB === batch || batchB === 1);
  if (a.dtype !== "float32" || b.dtype !== "float32" || !broadcastable) {
    return stockKernel(backend, "BatchMatMul", inputs, attrs);
  }
  const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
  const k = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const kB = transposeB ? b.shape[bRank - 1] : b.shape[bRank - 2];
  const n = transposeB ? b.shape[bRank - 2] : b.shape[bRank - 1];
  if (k !== kB) {
    throw new Error(
      `backend/kernels/batch_mat_mul.ts: inner shapes ${k} and ${kB} of [${a.shape}] and [${b.shape}] ` +
        `(transposeA=${transposeA}, transposeB=${transposeB}) must match`,
    );
  }
  if (batch * m * n === 0 || k === 0) {
    const empty = backend.makeOutput([...outer, m, n], "float32");
    backend.typedArrayFromHeap(empty).fill(0);
    return empty;
  }
  const a3 = reshape(backend, a, transposeA ? [batchA, k, m] : [batchA, m, k]);
  const b3 = reshape(backend, b, transposeB ? [batchB, n, k] : [batchB, k, n]);
  const swap = order === "swapped" ||
    (order === "auto" && swappedCost(batchA, batchB, m, k, n, transposeA, transposeB) <
        directCost(batchA, batchB, m, k, n, transposeA, transposeB));
  if (swap) {
    // out = (op(b)ᵀ · op(a)ᵀ)ᵀ
    const p = transposeB ? b3 : transpose(backend, b3, [0, 2, 1]); // [batchB, n, k]
    const q = transposeA ? a3 : transpose(backend, a3, [0, 2, 1]); // [batchA, k, m]
    const outT = backend.makeOutput([batch, n, m], "float32");
    product(backend, p, q, outT, batchB, batchA, n, k, m);
    dispose(backend, a3, b3);
    if (p !== b3) dispose(backend, p);
    if (q !== a3) dispose(backend, q);
    const out3 = transpose(backend, outT, [0, 2, 1]);
    dispose(backend, outT);
    const out = reshape(backend, out3, [...outer, m, n]);
    dispose(backend, out3);
    return out;
  }
  const p = transposeA ? transpose(backend, a3, [0, 2, 1]) : a3; // [batchA, m, k]
  const q = transposeB ? transpose(backend, b3, [0, 2, 1]) : b3; // [batchB, k, n]
  const out = backend.makeOutput([...outer, m, n], "float32");
  product(backend, p, q, out, batchA, batchB, m, k, n);
  dispose(backend, a3, b3);
  if (p !== a3) dispose(backend, p);
  if (q !== b3) dispose(backend, q);
  return out;
}

// A rough cost model in element passes, calibrated on one core: a C++ transpose
// moves ~0.37 G elements/s, XNNPACK packs the right operand at about twice that;
// its GEMM reaches ~27 GFLOP/s (≈ 73 flops per element pass) for tall products,
// loses efficiency when the streamed operand has few rows (M) and runs at about
// half speed once the packed right operand (k·n floats) outgrows the cache
// (measured: 512×8192×128 at 27, 128×8192×512 at 13 GFLOP/s); a call costs
// ~20 µs (≈ 7 000 passes).
function gemmCost(batchP: number, batchQ: number, m: number, k: number, n: number): number {
  const rows = batchQ === 1 ? batchP * m : m;
  const calls = batchQ === 1 ? 1 : Math.max(batchP, batchQ);
  const flops = 2 * Math.max(batchP, batchQ) * m * k * n;
  const cacheMiss = k * n > (1 << 20) ? 2 : 1;
  return flops * cacheMiss * (rows + 24) / rows / 73 + 0.5 * batchQ * k * n + 7000 * calls;
}

function directCost(batchA: number, batchB: number, m: number, k: number, n: number, tA: boolean, tB: boolean): number {
  return (tA ? batchA * m * k : 0) + (tB ? batchB * k * n : 0) + gemmCost(batchA, batchB, m, k, n);
}

function swappedCost(
  batchA: number,
  batchB: number,
  m: number,
  k: number,
  n: number,
  tA: boolean,
  tB: boolean,
): number {
  const batch = Math.max(batchA, batchB);
  return (tB ? 0 : batchB * k * n) + (tA ? 0 : batchA * m * k) + batch * m * n + gemmCost(batchB, batchA, n, k, m);
}

/** out [batch, m, n] = p [batchP, m, k] · q [batchQ, k, n] (batch-1 operands broadcast) by XNNPACK. */
function product(
  backend: KernelArgs["backend"],
  p: Info,
  q: Info,
  out: Info,
  batchP: number,
  batchQ: number,
  m: number,
  k: number,
  n: number,
): void {
  const outId = tensorId(backend, out);
  if (batchQ === 1) {
    // Rows of every batch of p against the one q: a single product, q packed once.
    // A fresh id for q (XNNPACK's operator cache is keyed by id, not shape), freed with the view.
    const qv = view(backend, q, 0, [k, n]);
    gemm(backend, tensorId(backend, p), qv.id, outId, batchP * m, k, n);
    releaseView(backend, qv);
    return;
  }
  const batch = Math.max(batchP, batchQ);
  for (let i = 0; i < batch; i++) {
    const pv = view(backend, p, batchP === 1 ? 0 : i * m * k, [m, k]);
    const qv = view(backend, q, i * k * n, [k, n]);
    const ov = view(backend, out, i * m * n, [m, n]);
    gemm(backend, pv.id, qv.id, ov.id, m, k, n);
    // Releasing q's view also frees the XNNPACK operator packed for it.
    releaseView(backend, pv);
    releaseView(backend, qv);
    releaseView(backend, ov);
  }
}

export const batchMatMulConfig: tf.KernelConfig = {
  kernelName: "BatchMatMul",
  backendName: "wasm",
  kernelFunc: batchMatMul as unknown as tf.KernelFunc,
};
