/**
 * What a recognizer costs: parameters, FLOPs per module counted from the shapes of the kernels it runs, and
 * latency per image at batch 1 on the current backend (strhub's `bench.py`: fvcore's `FlopCountAnalysis`
 * table — model / encoder / decoder / head — and a `torch.utils.benchmark` timing).
 *
 * FLOPs follow fvcore's convention, which strhub prints: one multiply-accumulate of a matrix product or
 * convolution counts as one FLOP; element-wise ops, softmax and norms are not counted (fvcore counts norms,
 * < 0.5 % of these models). The kernels come from `tf.profile` of a real forward, so the count follows the
 * model's actual control flow (e.g. PARSeq's AR loop: one decoder call per step). Per module:
 *
 * - encoder: a profile of the family's encoder alone (parseq: the ViT; abinet_vision / conclr_vision: the
 *   ResNet + transformer backbone);
 * - head: the matrix products whose weight operand has the classifier's shape (`head.weight` / `cls.weight`);
 * - decoder: the rest (parseq: the two-stream decoder over every step and refinement; ABINet: PositionAttention).
 *
 * Families this module does not know get the model row only.
 */
import * as tf from "@tensorflow/tfjs";
import type { PredictOptions, Recognizer } from "../models/recognizer.ts";

export interface KernelCount {
  name: string;
  flops: number;
  inputShapes: number[][];
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Multiply-accumulates of one kernel from its input and output shapes (0 for kernels that are not products). */
export function kernelFlops(name: string, inputs: number[][], outputs: number[][]): number {
  const out = outputs[0];
  if (!out || inputs.length < 2) return 0;
  switch (name) {
    case "BatchMatMul":
    case "_FusedMatMul":
    case "MatMul": {
      // out [..., m, n]; a [..., m, k] or [..., k, m]: k = |a| / (batch(a) · m).
      const a = inputs[0];
      const m = out[out.length - 2];
      const k = prod(a) / (prod(a.slice(0, -2)) * m);
      return prod(out) * k;
    }
    case "Conv2D":
    case "FusedConv2D": {
      const f = inputs[1]; // [kh, kw, in, out]
      return prod(out) * f[0] * f[1] * f[2];
    }
    case "DepthwiseConv2dNative":
    case "FusedDepthwiseConv2D": {
      const f = inputs[1]; // [kh, kw, in, multiplier]
      return prod(out) * f[0] * f[1];
    }
    default:
      return 0;
  }
}

/** Runs `f` under `tf.profile` and counts the FLOPs of the kernels it ran (its result is disposed). */
export async function countFlops(f: () => tf.TensorContainer): Promise<KernelCount[]> {
  const info = await tf.profile(() => {
    // Everything the forward makes, its result included, is freed (encoders are not tidy on their own).
    tf.tidy(() => void f());
    return undefined as unknown as tf.TensorContainer;
  });
  return info.kernels
    .map((k) => ({
      name: k.name,
      flops: kernelFlops(k.name, k.inputShapes as number[][], k.outputShapes as number[][]),
      inputShapes: k.inputShapes as number[][],
    }))
    .filter((k) => k.flops > 0);
}

const sum = (ks: readonly KernelCount[]) => ks.reduce((a, k) => a + k.flops, 0);

export interface ModuleCost {
  module: "model" | "encoder" | "decoder" | "head";
  parameters: number;
  flops: number;
}

export interface ModelCost {
  family: string;
  /** model, then encoder / decoder / head where the family is known. */
  modules: ModuleCost[];
  /** Median seconds per image at batch 1 (predict + reading the logits back). */
  secondsPerImage: number;
  decoding?: PredictOptions;
}

interface Split {
  encoder: (images: tf.Tensor4D) => tf.Tensor;
  /** Weight-name prefixes of the encoder and head; the decoder has the rest. */
  encoderPrefix: string;
  headWeight: string;
}

/** The encoder and head of the families strata knows (duck-typed, so this file needs no model imports). */
function split(model: Recognizer): Split | undefined {
  // deno-lint-ignore no-explicit-any
  const m = model as any;
  if (model.family === "parseq" && m.net?.encode) {
    return { encoder: (x) => m.net.encode(x), encoderPrefix: "encoder.", headWeight: "head.weight" };
  }
  const vision = model.family === "abinet_vision"
    ? m.vision
    : model.family === "conclr_vision"
    ? m.vision?.vision
    : undefined;
  if (vision?.backbone?.apply) {
    const ctx = { training: false, nextSeed: () => 0 };
    return { encoder: (x) => vision.backbone.apply(x, ctx), encoderPrefix: "backbone.", headWeight: "cls.weight" };
  }
  return undefined;
}

/** Parameters, FLOPs per module and batch-1 latency of `model` on `[1, H, W, C]` inputs. */
export async function measureCost(
  model: Recognizer,
  inputShape: [number, number, number],
  opts: { decoding?: PredictOptions; repeats?: number; forward?: (x: tf.Tensor4D) => tf.Tensor } = {},
): Promise<ModelCost> {
  const x = tf.randomUniform([1, ...inputShape], -1, 1, "float32", 7) as tf.Tensor4D;
  try {
    const predict = () =>
      opts.forward ? opts.forward(x) : (opts.decoding ? model.predict(x, opts.decoding) : model.predict(x)).logits;
    const total = await countFlops(predict);
    const params = (f: (name: string) => boolean) =>
      [...model.weights].filter(([n]) => f(n)).reduce((a, [, v]) => a + v.size, 0);
    const modules: ModuleCost[] = [{ module: "model", parameters: params(() => true), flops: sum(total) }];
    const s = split(model);
    if (s) {
      const enc = sum(await countFlops(() => s.encoder(x)));
      const headVar = model.weights.get(s.headWeight);
      const headShape = headVar?.shape.join(",");
      const head = sum(total.filter((k) => k.inputShapes[1]?.join(",") === headShape));
      const inEnc = (n: string) => n.startsWith(s.encoderPrefix);
      const inHead = (n: string) => n.startsWith(s.headWeight.replace(/weight$/, ""));
      modules.push(
        { module: "encoder", parameters: params(inEnc), flops: enc },
        { module: "decoder", parameters: params((n) => !inEnc(n) && !inHead(n)), flops: sum(total) - enc - head },
        { module: "head", parameters: params(inHead), flops: head },
      );
    }
    const times: number[] = [];
    for (let r = 0; r <= (opts.repeats ?? 5); r++) {
      const t = performance.now();
      const logits = predict();
      await logits.data();
      logits.dispose();
      if (r > 0) times.push((performance.now() - t) / 1000);
    }
    times.sort((a, b) => a - b);
    return {
      family: model.family,
      modules,
      secondsPerImage: times[Math.floor(times.length / 2)],
      decoding: opts.decoding,
    };
  } finally {
    x.dispose();
  }
}

/** `1.23 G`, `456.7 M`, `12.3 k`. */
export function si(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** strhub-style table: module | #parameters | #FLOPs. */
export function costTable(c: ModelCost): string {
  return [
    "| module | #parameters | #FLOPs |",
    "|:--|--:|--:|",
    ...c.modules.map((m) => `| ${m.module} | ${si(m.parameters)} | ${si(m.flops)} |`),
  ].join("\n");
}
