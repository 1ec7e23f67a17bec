/**
 * `pretrain_lm` stage kind: pretrains ABINet's BCN language model on text alone, with the official
 * spelling-mutation noise (random replacement, insertion, deletion; `data/spelling_mutation.ts`) — the input is
 * the noisy word, the target the clean one. The corpus is the project's English word list, or the `text`
 * input (any text file, split on white space). Emits a checkpoint (family `abinet_language`) that an `abinet`
 * train stage takes as its `init_language` input. tfjs and the models are imported lazily.
 */
import { protocolSchema } from "../data/params.ts";
import type { Protocol } from "../data/charset.ts";
import { type LanguageModelConfig, languageModelSchema } from "../models/abinet/abinet_config.ts";
import * as s from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";
import { type ScheduleConfig, scheduleSchema } from "../training/schedule.ts";

const mutationSchema = s.object({
  enabled: s.boolean({ default: true, description: "apply the noise (official use_sm: true)" }),
  pn0: s.number({ min: 0, max: 1, default: 0.7, description: "P(modify no character)" }),
  pn1: s.number({ min: 0, max: 1, default: 0.85, description: "P(modify ≤ 1 character)" }),
  pn2: s.number({ min: 0, max: 1, default: 0.95, description: "P(modify ≤ 2 characters); else 3" }),
  pt0: s.number({ min: 0, max: 1, default: 0.7, description: "P(replace) for a modified character" }),
  pt1: s.number({ min: 0, max: 1, default: 0.85, description: "P(replace or insert); else delete" }),
  digit_ratio: s.number({ min: 0, max: 1, default: 0.5, description: "texts with this share of digits stay" }),
}, { description: "spelling-mutation noise (official SpellingMutation defaults)" });

export interface PretrainLmParams {
  architecture: LanguageModelConfig;
  protocol: Protocol;
  mutation: { enabled: boolean; pn0: number; pn1: number; pn2: number; pt0: number; pt1: number; digit_ratio: number };
  held_out_fraction: number;
  val_samples: number;
  max_words?: number;
  batch_size: number;
  steps?: number;
  epochs?: number;
  lr: number;
  schedule: ScheduleConfig;
  clip_grad_norm: number;
  seed: number;
  validate_every: number;
  checkpoint_every: number;
  log_every: number;
  backend?: string;
}

const base = s.object({
  architecture: languageModelSchema,
  protocol: protocolSchema({ default: 36, description: "charset of the words (36: ABINet's a–z, 0–9)" }),
  mutation: mutationSchema,
  held_out_fraction: s.number({
    min: 0,
    max: 0.5,
    default: 0.02,
    description: "share of the vocabulary (by word hash) held out for validation, never trained on",
  }),
  val_samples: s.integer({ min: 1, default: 512, description: "held-out words scored at each validation" }),
  max_words: s.integer({ min: 1, optional: true, description: "use only the first N words of the corpus" }),
  batch_size: s.integer({ min: 1, default: 256, description: "words per update (official 4096)" }),
  steps: s.integer({ min: 1, optional: true, description: "number of updates (give steps or epochs)" }),
  epochs: s.number({ min: 0, optional: true, description: "passes over the training words" }),
  lr: s.number({ min: 0, default: 1e-4, description: "peak learning rate (Adam; official 1e-4)" }),
  schedule: scheduleSchema,
  clip_grad_norm: s.number({ min: 0, default: 20, description: "global-norm gradient clipping; 0 disables" }),
  seed: s.integer({ min: 0, default: 1 }),
  validate_every: s.integer({ min: 0, default: 0, description: "validate every N steps (0: only at the end)" }),
  checkpoint_every: s.integer({ min: 1, default: 200 }),
  log_every: s.integer({ min: 1, default: 10 }),
  backend: s.string({
    enum: ["tensorflow", "webgpu", "wasm", "cpu"] as const,
    optional: true,
    description: "force a tfjs backend (default: automatic selection)",
  }),
});

export const pretrainLmParams: s.ObjectSchema<PretrainLmParams> = {
  ...(base as unknown as s.ObjectSchema<PretrainLmParams>),
  parse(v: unknown, path: s.KeyPath): PretrainLmParams {
    const p = base.parse(v, path) as unknown as PretrainLmParams;
    if ((p.steps === undefined) === (p.epochs === undefined)) {
      throw new s.SchemaError([...path, p.steps === undefined ? "steps" : "epochs"], "exactly one of steps, epochs", {
        steps: p.steps,
        epochs: p.epochs,
      });
    }
    const m = p.mutation;
    if (!(m.pn0 <= m.pn1 && m.pn1 <= m.pn2)) {
      throw new s.SchemaError([...path, "mutation"], "pn0 ≤ pn1 ≤ pn2", m);
    }
    if (!(m.pt0 <= m.pt1)) throw new s.SchemaError([...path, "mutation"], "pt0 ≤ pt1", m);
    return p;
  },
};

export default registerStageKind<PretrainLmParams>({
  kind: "pretrain_lm",
  version: 1,
  description: "pretrain ABINet's BCN language model on words with spelling-mutation noise",
  params: pretrainLmParams,
  inputs: {
    text: { description: "a text file (words split on white space); default: the English word list", optional: true },
  },
  outputs: {
    model: { type: "dir", description: "best.safetensors, last.safetensors, config.json (family abinet_language)" },
    curve: { type: "file", description: "JSONL: step, loss, lr, grad_norm, samples/s, held-out correction metrics" },
  },
  module: import.meta.url,
  resources: ["accelerator"],
  async environment(params) {
    const { backendFingerprint } = await import("../training/backend_fingerprint.ts");
    return { ...(await backendFingerprint(params.backend)) };
  },
  async run(ctx: StageContext<PretrainLmParams>) {
    const { runPretrainLm } = await import("../training/pretrain_lm_stage.ts");
    return await runPretrainLm(ctx);
  },
});
