/**
 * `evaluate` stage kind: scores a trained model (the `model` output of `train`) on one or more LMDBs under a
 * label protocol. Writes `metrics` (metrics.json) and `predictions` (JSONL); formats in training/README.md.
 * tfjs and the models are imported lazily.
 */
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
}

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
    enum: ["tensorflow", "webgpu", "wasm", "cpu"] as const,
    optional: true,
    description: "force a tfjs backend (default: automatic selection)",
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
