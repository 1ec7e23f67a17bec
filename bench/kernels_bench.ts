/**
 * Per-op benchmark (issue 4): forward and backward GFLOP/s of the convolution
 * and matMul shapes of the tiny and the full ABINet-Vision configs on the wasm
 * backend, stock kernels ("before"; the stock backend has no
 * Conv2DBackpropFilter, so that column is strata's in both) vs strata's
 * kernels ("after"), and PyTorch on one CPU thread for reference when it is
 * installed (tools/torch_baseline.py). Batch 32 for the tiny shapes, 4 for
 * the full ones (the stock backward kernels run at ~2 GFLOP/s).
 */
import * as tf from "@tensorflow/tfjs";
import { fileURLToPath } from "node:url";
import { useWasm } from "../backend/wasm.ts";

type ConvOp = { kind: "conv"; name: string; x: number[]; k: number; co: number; stride: number };
type MatMulOp = { kind: "matmul"; name: string; a: number[]; b: number[]; ta: boolean; tb: boolean };
type Op = ConvOp | MatMulOp;

function convs(prefix: string, b: number, list: [number, number, number, number, number, number][]): ConvOp[] {
  return list.map(([h, w, ci, co, k, stride]) => ({
    kind: "conv",
    name: `${prefix} conv${k}×${k}${stride > 1 ? "/2" : ""} ${ci}→${co} @${h}×${w}`,
    x: [b, h, w, ci],
    k,
    co,
    stride,
  }));
}

function attention(prefix: string, b: number, heads: number, d: number, s: number, t: number): MatMulOp[] {
  const bh = b * heads;
  const dh = d / heads;
  return [
    { kind: "matmul", name: `${prefix} q·kᵀ [${bh},${s},${dh}]`, a: [bh, s, dh], b: [bh, s, dh], ta: false, tb: true },
    { kind: "matmul", name: `${prefix} att·v [${bh},${s},${s}]`, a: [bh, s, s], b: [bh, s, dh], ta: false, tb: false },
    { kind: "matmul", name: `${prefix} pos q·kᵀ [${b},${t},${d}]`, a: [b, t, d], b: [b, s, d], ta: false, tb: true },
    { kind: "matmul", name: `${prefix} pos att·v [${b},${t},${s}]`, a: [b, t, s], b: [b, s, d], ta: false, tb: false },
  ];
}

function linears(prefix: string, rows: number, pairs: [number, number][]): MatMulOp[] {
  return pairs.map(([i, o]) => ({
    kind: "matmul",
    name: `${prefix} linear ${i}→${o} ×${rows}`,
    a: [rows, i],
    b: [i, o],
    ta: false,
    tb: false,
  }));
}

export const TINY_OPS: Op[] = [
  ...convs("tiny", 32, [
    [32, 128, 3, 16, 3, 1],
    [32, 128, 16, 16, 1, 1],
    [32, 128, 16, 16, 3, 2],
    [16, 64, 32, 32, 3, 1],
    [16, 64, 32, 64, 1, 1],
    [16, 64, 64, 64, 3, 2],
    [8, 32, 128, 128, 1, 1],
    [8, 32, 128, 128, 3, 1],
    [8, 32, 128, 32, 3, 1],
  ]),
  ...linears("tiny", 32 * 256, [[128, 384], [128, 512], [512, 128]]),
  ...attention("tiny", 32, 8, 128, 256, 26),
];

export const FULL_OPS: Op[] = [
  ...convs("full", 4, [
    [32, 128, 3, 32, 3, 1],
    [32, 128, 32, 32, 3, 2],
    [16, 64, 64, 64, 3, 1],
    [16, 64, 128, 128, 3, 2],
    [8, 32, 256, 256, 3, 1],
    [8, 32, 256, 512, 1, 1],
    [8, 32, 512, 512, 3, 1],
    [8, 32, 512, 64, 3, 1],
  ]),
  ...linears("full", 4 * 256, [[512, 1536], [512, 2048], [2048, 512]]),
  ...attention("full", 4, 8, 512, 256, 26),
];

function flops(op: Op): number {
  if (op.kind === "conv") {
    const [b, h, w, ci] = op.x;
    return 2 * b * Math.ceil(h / op.stride) * Math.ceil(w / op.stride) * op.k * op.k * ci * op.co;
  }
  const m = op.ta ? op.a[op.a.length - 1] : op.a[op.a.length - 2];
  const k = op.ta ? op.a[op.a.length - 2] : op.a[op.a.length - 1];
  const n = op.tb ? op.b[op.b.length - 2] : op.b[op.b.length - 1];
  return 2 * op.a.slice(0, -2).reduce((x, y) => x * y, 1) * m * k * n;
}

function median(f: () => void, reps: number): number {
  const times: number[] = [];
  for (let i = 0; i <= reps; i++) {
    const t0 = performance.now();
    f();
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

type Timing = { forward: number; backward: number; dx?: number; dw?: number };

/** Seconds for the forward op and its backward pass (both operands' gradients) on the current backend. */
function timeOp(op: Op, reps: number): Timing {
  return tf.tidy(() => {
    if (op.kind === "conv") {
      const x = tf.randomNormal(op.x as [number, number, number, number]) as tf.Tensor4D;
      const w = tf.randomNormal([op.k, op.k, op.x[3], op.co], 0, 0.1) as tf.Tensor4D;
      const y = tf.conv2d(x, w, op.stride, "same");
      const dy = tf.randomNormal(y.shape);
      const run = (f: () => tf.Tensor) => () => tf.tidy(() => void f().dataSync());
      const attrs = { strides: op.stride, pad: "same", dataFormat: "NHWC" };
      const forward = median(run(() => tf.conv2d(x, w, op.stride, "same")), reps);
      const dx = median(
        run(() =>
          tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, {
            ...attrs,
            inputShape: x.shape,
          }) as tf.Tensor
        ),
        reps,
      );
      const dw = median(
        run(() =>
          tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: w.shape }) as tf.Tensor
        ),
        reps,
      );
      return { forward, backward: dx + dw, dx, dw };
    }
    const a = tf.randomNormal(op.a);
    const b = tf.randomNormal(op.b);
    const y = tf.matMul(a, b, op.ta, op.tb);
    const dy = tf.randomNormal(y.shape);
    // The two products of tfjs's BatchMatMul gradient (tfjs-core BatchMatMul_grad), run directly.
    const grads: [tf.Tensor, tf.Tensor, boolean, boolean][] = !op.ta && !op.tb
      ? [[dy, b, false, true], [a, dy, true, false]]
      : !op.ta && op.tb
      ? [[dy, b, false, false], [dy, a, true, false]]
      : op.ta && !op.tb
      ? [[b, dy, false, true], [a, dy, false, false]]
      : [[b, dy, true, true], [dy, a, true, true]];
    const forward = median(() => tf.tidy(() => void tf.matMul(a, b, op.ta, op.tb).dataSync()), reps);
    const backward = median(
      () => tf.tidy(() => grads.forEach(([p, q, tp, tq]) => void tf.matMul(p, q, tp, tq).dataSync())),
      reps,
    );
    return { forward, backward };
  });
}

async function torchOps(ops: Op[], reps: number): Promise<Timing[] | undefined> {
  const script = fileURLToPath(new URL("../tools/torch_baseline.py", import.meta.url));
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [script, "ops", JSON.stringify({ threads: 1, reps, ops })],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      console.log(`PyTorch column skipped: ${new TextDecoder().decode(out.stderr).trim().split("\n").pop()}`);
      return undefined;
    }
    const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
    if (result.skipped) {
      console.log(`PyTorch column skipped: ${result.skipped}`);
      return undefined;
    }
    return result.ops as Timing[];
  } catch (e) {
    console.log(`PyTorch column skipped: /usr/bin/python3 not runnable (${(e as Error).message})`);
    return undefined;
  }
}

const gf = (f: number, s: number | undefined) => s === undefined ? "-" : (f / s / 1e9).toFixed(1);

export async function main(): Promise<void> {
  const reps = Number(Deno.env.get("STRATA_BENCH_REPS") ?? 2);
  const which = Deno.env.get("STRATA_BENCH_OPS") ?? "tiny,full";
  const ops = [...(which.includes("tiny") ? TINY_OPS : []), ...(which.includes("full") ? FULL_OPS : [])];
  console.log(`GFLOP/s, median of ${reps} after a warm-up; backward = gradients of both operands (2× forward flops).`);
  console.log(
    "before = stock wasm kernels (its Conv2DBackpropFilter does not exist: strata's in both columns); after = strata's.\n",
  );
  await useWasm({ kernels: "missing-only" });
  const before = ops.map((op) => timeOp(op, reps));
  await useWasm({ kernels: "all" });
  const after = ops.map((op) => timeOp(op, reps));
  const torch = await torchOps(ops, reps);
  console.log(
    "| op | GFLOP | fwd before | fwd after | bwd before | bwd after | bwd × | dx before | dx after | dw after |" +
      (torch ? " torch fwd | torch bwd |" : ""),
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|" + (torch ? "---|---|" : ""));
  let bwdBefore = 0;
  let bwdAfter = 0;
  ops.forEach((op, i) => {
    const f = flops(op);
    const b = before[i];
    const a = after[i];
    bwdBefore += b.backward;
    bwdAfter += a.backward;
    const row = [
      op.name,
      (f / 1e9).toFixed(3),
      gf(f, b.forward),
      gf(f, a.forward),
      gf(2 * f, b.backward),
      gf(2 * f, a.backward),
      (b.backward / a.backward).toFixed(1),
      gf(f, b.dx),
      gf(f, a.dx),
      gf(f, a.dw),
    ];
    if (torch) row.push(gf(f, torch[i].forward), gf(2 * f, torch[i].backward));
    console.log(`| ${row.join(" | ")} |`);
  });
  console.log(
    `\nall backward passes above: ${bwdBefore.toFixed(2)} s before, ${bwdAfter.toFixed(2)} s after ` +
      `(${(bwdBefore / bwdAfter).toFixed(1)}×)`,
  );
}

if (import.meta.main) await main();
