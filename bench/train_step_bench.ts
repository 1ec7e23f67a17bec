/**
 * Training-step benchmark (issue 4): an ABINet-Vision-like tiny model built
 * directly with tf ops — ResNet BasicBlocks 16-32-64-128 on 32×128 input, a
 * 2-layer post-LN transformer (d = 128, 8 heads, FFN 512), position attention
 * (mini-UNet keys, T = 26 queries over the 8×32 positions), classifier to 37
 * classes; batch 32, Adam — on the wasm backend with the stock kernels (plus
 * the two it lacks, the least that trains), on wasm with strata's kernels, and
 * the same model in PyTorch on the CPU (tools/torch_baseline.py), printed as
 * ratios measured in the same run.
 */
import * as tf from "@tensorflow/tfjs";
import { fileURLToPath } from "node:url";
import { useWasm } from "../backend/wasm.ts";

export type TinyConfig = {
  batch: number;
  height: number;
  width: number;
  widths: number[]; // ResNet stage widths
  blocks: number[]; // BasicBlocks per stage
  strides: number[]; // stage strides
  stem: number;
  dModel: number;
  heads: number;
  ffn: number;
  layers: number;
  unet: number; // mini-UNet channels
  positions: number; // T queries
  classes: number;
};

export const TINY: TinyConfig = {
  batch: 32,
  height: 32,
  width: 128,
  widths: [16, 32, 64, 128],
  blocks: [2, 2, 2, 2],
  strides: [2, 1, 2, 1],
  stem: 16,
  dModel: 128,
  heads: 8,
  ffn: 512,
  layers: 2,
  unet: 32,
  positions: 26,
  classes: 37,
};

type Params = Map<string, tf.Variable>;

/** Deterministic pseudo-random weights (He-scaled uniform), identical in tools/torch_baseline.py. */
function init(shape: number[], fanIn: number, seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const scale = Math.sqrt(6 / fanIn);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 * 2 - 1) * scale;
  }
  return tf.tensor(out, shape);
}

export class TinyAbinet {
  readonly params: Params = new Map();
  private seed = 1;
  constructor(readonly cfg: TinyConfig) {
    const c = cfg;
    this.conv("stem", 3, 3, c.stem);
    let cin = c.stem;
    c.widths.forEach((w, s) => {
      for (let b = 0; b < c.blocks[s]; b++) {
        const name = `layer${s + 1}.${b}`;
        this.conv(`${name}.conv1`, 1, cin, w);
        this.conv(`${name}.conv2`, 3, w, w);
        if (b === 0 && (cin !== w || c.strides[s] !== 1)) this.conv(`${name}.down`, 1, cin, w);
        cin = w;
      }
    });
    const d = c.dModel;
    for (let l = 0; l < c.layers; l++) {
      this.dense(`enc${l}.qkv`, d, 3 * d);
      this.dense(`enc${l}.out`, d, d);
      this.dense(`enc${l}.ff1`, d, c.ffn);
      this.dense(`enc${l}.ff2`, c.ffn, d);
      this.norm(`enc${l}.ln1`, d);
      this.norm(`enc${l}.ln2`, d);
    }
    const u = c.unet;
    [[d, u], [u, u], [u, u], [u, u]].forEach(([i, o], k) => this.conv(`pa.enc${k}`, 3, i, o));
    [[u, u], [u, u], [u, u], [u, d]].forEach(([i, o], k) => this.conv(`pa.dec${k}`, 3, i, o));
    this.dense("pa.query", d, d);
    this.dense("cls", d, c.classes);
  }

  private add(name: string, t: tf.Tensor): void {
    this.params.set(name, tf.variable(t, true, name));
  }
  private conv(name: string, k: number, cin: number, cout: number): void {
    this.add(`${name}.w`, init([k, k, cin, cout], k * k * cin, this.seed++));
    this.norm(`${name}.bn`, cout);
  }
  private dense(name: string, cin: number, cout: number): void {
    this.add(`${name}.w`, init([cin, cout], cin, this.seed++));
    this.add(`${name}.b`, tf.zeros([cout]));
  }
  private norm(name: string, c: number): void {
    this.add(`${name}.g`, tf.ones([c]));
    this.add(`${name}.b`, tf.zeros([c]));
  }
  private p(name: string): tf.Tensor {
    return this.params.get(name)!;
  }

  /** conv (no bias) + batch norm (batch statistics, training mode) + optional ReLU. */
  private cbr(x: tf.Tensor4D, name: string, stride: [number, number] | number, relu = true): tf.Tensor4D {
    const y = tf.conv2d(x, this.p(`${name}.w`) as tf.Tensor4D, stride, "same");
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    const n = tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, 1e-5)));
    const out = tf.add(tf.mul(n, this.p(`${name}.bn.g`)), this.p(`${name}.bn.b`)) as tf.Tensor4D;
    return relu ? tf.relu(out) : out;
  }

  private linear(x: tf.Tensor2D, name: string): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.p(`${name}.w`) as tf.Tensor2D), this.p(`${name}.b`));
  }

  private layerNorm(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const { mean, variance } = tf.moments(x, [1], true);
    const n = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
    return tf.add(tf.mul(n, this.p(`${name}.g`)), this.p(`${name}.b`));
  }

  private heads(x: tf.Tensor2D, b: number, s: number): tf.Tensor3D {
    const h = this.cfg.heads;
    const dh = this.cfg.dModel / h;
    return tf.reshape(tf.transpose(tf.reshape(x, [b, s, h, dh]), [0, 2, 1, 3]), [b * h, s, dh]);
  }

  private encoderLayer(x: tf.Tensor2D, l: number, b: number, s: number): tf.Tensor2D {
    const d = this.cfg.dModel;
    const h = this.cfg.heads;
    const qkv = this.linear(x, `enc${l}.qkv`);
    const [q, k, v] = tf.split(qkv, 3, 1) as tf.Tensor2D[];
    const att = tf.softmax(
      tf.mul(tf.matMul(this.heads(q, b, s), this.heads(k, b, s), false, true), 1 / Math.sqrt(d / h)),
    );
    const ctx = tf.reshape(
      tf.transpose(tf.reshape(tf.matMul(att, this.heads(v, b, s)), [b, h, s, d / h]), [0, 2, 1, 3]),
      [
        b * s,
        d,
      ],
    );
    const x1 = this.layerNorm(tf.add(x, this.linear(ctx as tf.Tensor2D, `enc${l}.out`)), `enc${l}.ln1`);
    const ff = this.linear(tf.relu(this.linear(x1, `enc${l}.ff1`)), `enc${l}.ff2`);
    return this.layerNorm(tf.add(x1, ff), `enc${l}.ln2`);
  }

  /** logits [B, T, classes] */
  forward(images: tf.Tensor4D): tf.Tensor3D {
    const c = this.cfg;
    let x = this.cbr(images, "stem", 1);
    c.widths.forEach((_w, s) => {
      for (let b = 0; b < c.blocks[s]; b++) {
        const name = `layer${s + 1}.${b}`;
        const stride = b === 0 ? c.strides[s] : 1;
        const h = this.cbr(this.cbr(x, `${name}.conv1`, 1), `${name}.conv2`, stride, false);
        const short = this.params.has(`${name}.down.w`) ? this.cbr(x, `${name}.down`, stride, false) : x;
        x = tf.relu(tf.add(h, short));
      }
    });
    const [b, fh, fw, d] = x.shape;
    const s = fh * fw;
    let seq = tf.add(tf.reshape(x, [b, s, d]), positionalEncoding(s, d)).reshape([b * s, d]) as tf.Tensor2D;
    for (let l = 0; l < c.layers; l++) seq = this.encoderLayer(seq, l, b, s);
    const feat = tf.reshape(seq, [b, fh, fw, d]) as tf.Tensor4D;
    // Position attention: mini-UNet keys.
    const e0 = this.cbr(feat, "pa.enc0", [1, 2]);
    const e1 = this.cbr(e0, "pa.enc1", 2);
    const e2 = this.cbr(e1, "pa.enc2", 2);
    const e3 = this.cbr(e2, "pa.enc3", 2);
    const up = (t: tf.Tensor4D, sh: number, sw: number) =>
      tf.image.resizeNearestNeighbor(t, [t.shape[1] * sh, t.shape[2] * sw]);
    let k = tf.add(this.cbr(up(e3, 2, 2), "pa.dec0", 1), e2) as tf.Tensor4D;
    k = tf.add(this.cbr(up(k, 2, 2), "pa.dec1", 1), e1) as tf.Tensor4D;
    k = tf.add(this.cbr(up(k, 2, 2), "pa.dec2", 1), e0) as tf.Tensor4D;
    k = this.cbr(up(k, 1, 2), "pa.dec3", 1);
    const q = this.linear(positionalEncoding(c.positions, d) as tf.Tensor2D, "pa.query"); // [T, d]
    const keys = tf.reshape(k, [b, s, d]);
    const scores = tf.matMul(tf.tile(tf.reshape(q, [1, c.positions, d]), [b, 1, 1]), keys, false, true);
    const att = tf.softmax(tf.mul(scores, 1 / Math.sqrt(d))); // [B, T, S]
    const vec = tf.matMul(att, tf.reshape(feat, [b, s, d])); // [B, T, d]
    const logits = this.linear(tf.reshape(vec, [b * c.positions, d]) as tf.Tensor2D, "cls");
    return tf.reshape(logits, [b, c.positions, c.classes]);
  }

  loss(images: tf.Tensor4D, labels: tf.Tensor2D): tf.Scalar {
    const logits = this.forward(images);
    const oneHot = tf.cast(tf.oneHot(labels, this.cfg.classes), "float32");
    return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

function positionalEncoding(n: number, d: number): tf.Tensor2D {
  const pe = new Float32Array(n * d);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < d; i += 2) {
      const angle = p / Math.pow(10000, i / d);
      pe[p * d + i] = Math.sin(angle);
      if (i + 1 < d) pe[p * d + i + 1] = Math.cos(angle);
    }
  }
  return tf.tensor2d(pe, [n, d]);
}

export function syntheticBatch(cfg: TinyConfig, seed = 7): { images: tf.Tensor4D; labels: tf.Tensor2D } {
  const n = cfg.batch * cfg.height * cfg.width * 3;
  const img = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    img[i] = s / 4294967296 - 0.5;
  }
  const lab = new Int32Array(cfg.batch * cfg.positions);
  for (let i = 0; i < lab.length; i++) lab[i] = (i * 7 + 3) % cfg.classes;
  return {
    images: tf.tensor4d(img, [cfg.batch, cfg.height, cfg.width, 3]),
    labels: tf.tensor2d(lab, [cfg.batch, cfg.positions], "int32"),
  };
}

export function paramCount(model: TinyAbinet): number {
  let n = 0;
  for (const v of model.params.values()) n += v.size;
  return n;
}

/** Median seconds per Adam step over `steps` timed steps (after one warm-up step). */
export function timeSteps(model: TinyAbinet, steps: number): { seconds: number; loss: number } {
  const { images, labels } = syntheticBatch(model.cfg);
  const optimizer = tf.train.adam(1e-4);
  const times: number[] = [];
  let loss = NaN;
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    const l = optimizer.minimize(() => model.loss(images, labels), true)!;
    loss = l.dataSync()[0];
    l.dispose();
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  optimizer.dispose();
  tf.dispose([images, labels]);
  times.sort((a, b) => a - b);
  return { seconds: times[Math.floor(times.length / 2)], loss };
}

/** Runs tools/torch_baseline.py (threads: PyTorch's intra-op threads, default 2); undefined when PyTorch is absent. */
export async function torchStep(
  cfg: TinyConfig,
  steps: number,
  threads = 2,
): Promise<{ seconds: number; threads: number; loss: number } | undefined> {
  const script = fileURLToPath(new URL("../tools/torch_baseline.py", import.meta.url));
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [script, "train-step", JSON.stringify({ ...cfg, steps, threads })],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) {
      console.log(`PyTorch baseline skipped: ${new TextDecoder().decode(out.stderr).trim().split("\n").pop()}`);
      return undefined;
    }
    const result = JSON.parse(text.split("\n").pop()!);
    if (result.skipped) {
      console.log(`PyTorch baseline skipped: ${result.skipped}`);
      return undefined;
    }
    return { seconds: result.seconds, threads: result.threads, loss: result.loss };
  } catch (e) {
    console.log(`PyTorch baseline skipped: /usr/bin/python3 not runnable (${(e as Error).message})`);
    return undefined;
  }
}

export async function main(): Promise<void> {
  const cfg = TINY;
  const steps = Number(Deno.env.get("STRATA_BENCH_STEPS") ?? 2);
  // A fresh model (same initial weights) per run, so the losses after the same steps compare.
  const run = async (kernels: "missing-only" | "all") => {
    await useWasm({ kernels });
    const model = new TinyAbinet(cfg);
    const result = timeSteps(model, steps);
    model.dispose();
    return result;
  };
  await useWasm();
  const probe = new TinyAbinet(cfg);
  console.log(
    `tiny ABINet-Vision-like model: ${(paramCount(probe) / 1e6).toFixed(2)} M params, batch ${cfg.batch}, ` +
      `${cfg.height}×${cfg.width}, ${steps} timed steps after 1 warm-up (median)`,
  );
  probe.dispose();
  const stock = await run("missing-only");
  const fast = await run("all");
  const torch = [];
  for (const threads of [1, 2]) {
    const t = await torchStep(cfg, steps, threads);
    if (t) torch.push(t);
  }
  const rows: string[][] = [
    ["wasm, stock kernels (+ the 2 missing ones)", stock.seconds.toFixed(2), stock.loss.toFixed(4)],
    ["wasm + strata kernels", fast.seconds.toFixed(2), fast.loss.toFixed(4)],
  ];
  for (const t of torch) rows.push([`PyTorch CPU, ${t.threads} thread(s)`, t.seconds.toFixed(2), t.loss.toFixed(4)]);
  console.log("| run | s / step | loss after the steps |\n|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log(`\nstrata kernels vs stock wasm: ${(stock.seconds / fast.seconds).toFixed(2)}× faster`);
  for (const t of torch) {
    console.log(
      `vs PyTorch (${t.threads} thread(s)): stock wasm ${(t.seconds / stock.seconds).toFixed(3)}×, ` +
        `wasm + strata kernels ${(t.seconds / fast.seconds).toFixed(3)}× PyTorch's speed (goal ≥ 0.3×)`,
    );
  }
}

if (import.meta.main) await main();
