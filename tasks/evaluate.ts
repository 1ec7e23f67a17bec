/**
 * `evaluate` stage kind: scores a trained model (the `model` output of `train`) on one or more LMDBs under a
 * label protocol. Writes `metrics` (metrics.json) and `predictions` (JSONL); formats in training/README.md.
 * tfjs and the models are imported lazily.
 */
import { BACKEND_CHOICES } from "../backend/names.ts";
import { badInputSchema, protocolSchema } from "../data/params.ts";
import type { Protocol } from "../data/charset.ts";
import * as s from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";

export interface EvaluateParams {
  protocol: Protocol;
  batch_size: number;
  checkpoint: "best" | "last";
  limit?: number;
  max_length: number;
  bad_input: "error" | "skip";
  backend?: string;
  decode_ar?: boolean;
  refine_iters?: number;
  rotation?: number[];
  cost: boolean;
}

/** A rotation angle: 0, 90, 180 or 270 (degrees counter-clockwise, as strhub's `--rotation`). */
const rotationSchema: s.Schema<number> = (() => {
  const expected = "one of 0, 90, 180, 270";
  const check = (v: unknown, path: s.KeyPath): number => {
    if (v !== 0 && v !== 90 && v !== 180 && v !== 270) throw new s.SchemaError(path, expected, v);
    return v;
  };
  return {
    expected,
    optional: false,
    parse: (v, path) => check(v, path),
    fromString: (str, path) => check(Number(str.trim()), path),
    describe: () => ({ type: expected }),
  };
})();

const base = s.object({
  protocol: protocolSchema({ default: 36, description: "label protocol of the comparison (36: case-insensitive)" }),
  batch_size: s.integer({ min: 1, default: 64 }),
  checkpoint: s.string({ enum: ["best", "last"] as const, default: "best", description: "which checkpoint" }),
  limit: s.integer({ min: 1, optional: true, description: "score only the first N usable samples of each set" }),
  max_length: s.integer({
    min: 1,
    max: 25,
    default: 25,
    description: "test labels longer than this are dropped (the protocol's 25). A model that reads fewer characters " +
      "(its data.labels.max_length) is still scored on every word up to this length: longer ones count as errors",
  }),
  bad_input: badInputSchema,
  backend: s.string({
    enum: BACKEND_CHOICES,
    optional: true,
    description: "force a tfjs backend (default: automatic selection)",
  }),
  decode_ar: s.boolean({
    optional: true,
    description:
      "autoregressive (true) or non-autoregressive decoding; families that have it (parseq); default: the model's",
  }),
  refine_iters: s.integer({
    min: 0,
    optional: true,
    description: "iterative refinement passes (parseq); default: the model's",
  }),
  cost: s.boolean({
    default: false,
    description:
      "also measure parameters, FLOPs per module and ms/image at batch 1 (training/cost.ts) as metrics params_m, gflops, ms_per_image",
  }),
  rotation: s.array(rotationSchema, {
    minItems: 1,
    optional: true,
    description: "evaluate rotated copies, e.g. [0, 90, 180, 270] (strhub --rotation); default [0]",
  }),
});

export const evaluateParams = base as unknown as s.ObjectSchema<EvaluateParams>;

export default registerStageKind<EvaluateParams>({
  kind: "evaluate",
  version: 1,
  description: "word accuracy, 1-NED, CCR, CWR, confidence per data set and combined",
  params: evaluateParams,
  inputs: {
    model: { description: "a train stage's model directory (best.safetensors, last.safetensors)" },
    datasets: { description: "LMDBs to score, named by their producing stage (or a `name` param)", many: true },
  },
  outputs: {
    metrics: { type: "file", description: "metrics.json: per data set and combined, with the model's identity" },
    predictions: { type: "file", description: "JSONL per sample: dataset, index, label, prediction, confidence" },
    table: { type: "file", description: "table.md: strhub test.py's table per data set and Combined (per rotation)" },
  },
  module: import.meta.url,
  resources: ["accelerator"],
  async environment(params) {
    const { backendFingerprint } = await import("../training/backend_fingerprint.ts");
    return { ...(await backendFingerprint(params.backend)) };
  },
  async run(ctx: StageContext<EvaluateParams>) {
    const { runEvaluate } = await import("../training/evaluate_stage.ts");
    return await runEvaluate(ctx);
  },
});
