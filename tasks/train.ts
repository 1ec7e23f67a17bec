/**
 * `train` stage kind: trains a registered model family on one or more STR LMDBs (see training/README.md).
 *
 * tfjs, the model families and the data code are imported lazily (inside `environment` and `run`) so that
 * loading the engine stays fast.
 */
import { builtinConfigSchema, builtinFamilies } from "../models/config_schemas.ts";
import { getModelFamily, modelFamilies } from "../models/recognizer.ts";
import { type KeyPath, SchemaError } from "../pipeline/schema.ts";
import * as s from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";
import { type DataParams, dataSchema } from "../training/data_params.ts";
import { scheduleSchema } from "../training/schedule.ts";

const fields = {
  model: s.string({ minLength: 1, description: "model family (e.g. abinet_vision, conclr_vision)" }),
  architecture: s.any({ default: {}, description: "the family's config (validated by the family's schema)" }),
  data: dataSchema,
  batch_size: s.integer({ min: 1, default: 32 }),
  steps: s.integer({ min: 1, optional: true, description: "number of updates (give steps or epochs)" }),
  epochs: s.number({ min: 0, optional: true, description: "passes over the training data (give steps or epochs)" }),
  lr: s.number({ min: 0, default: 1e-4, description: "peak learning rate (Adam, β = 0.9, 0.999)" }),
  schedule: scheduleSchema,
  clip_grad_norm: s.number({ min: 0, default: 20, description: "global-norm gradient clipping; 0 disables" }),
  seed: s.integer({ min: 0, default: 1, description: "one seed for init, data order, augmentation, dropout" }),
  validate_every: s.integer({ min: 0, default: 0, description: "validate every N steps (0: only at the end)" }),
  val_samples: s.integer({ min: 1, optional: true, description: "validate on the first N samples of `val`" }),
  checkpoint_every: s.integer({ min: 1, default: 200, description: "resumable checkpoint every N steps" }),
  log_every: s.integer({ min: 1, default: 10, description: "a curve line every N steps" }),
  backend: s.string({
    enum: ["tensorflow", "webgpu", "wasm", "cpu"] as const,
    optional: true,
    description: "force a tfjs backend (default: automatic selection)",
  }),
};

export type TrainParams = s.Infer<typeof fields> & {
  model: string;
  architecture: unknown;
  data: DataParams;
  batch_size: number;
  steps?: number;
  epochs?: number;
  lr: number;
  clip_grad_norm: number;
  seed: number;
  validate_every: number;
  val_samples?: number;
  checkpoint_every: number;
  log_every: number;
  backend?: string;
};

const base = s.object(fields);

/**
 * Validates `architecture` with the family's schema (errors keep the path under `architecture`). Built-in
 * families are checked from their light config modules; other registered families (tests) from the registry.
 */
export function checkArchitecture(p: TrainParams, path: KeyPath = []): Record<string, unknown> {
  const schema = modelFamilies().includes(p.model) ? getModelFamily(p.model).config : builtinConfigSchema(p.model);
  if (!schema) {
    const known = [...new Set([...builtinFamilies(), ...modelFamilies()])].sort();
    throw new SchemaError([...path, "model"], `one of ${known.map((k) => JSON.stringify(k)).join(", ")}`, p.model);
  }
  return schema.parse(p.architecture ?? {}, [...path, "architecture"]) as Record<string, unknown>;
}

function checkParams(p: TrainParams, path: KeyPath): void {
  if ((p.steps === undefined) === (p.epochs === undefined)) {
    throw new SchemaError([...path, p.steps === undefined ? "steps" : "epochs"], "exactly one of steps, epochs", {
      steps: p.steps,
      epochs: p.epochs,
    });
  }
  if (p.data.image.channels !== 1 && p.data.image.channels !== 3) {
    throw new SchemaError([...path, "data", "image", "channels"], "1 or 3", p.data.image.channels);
  }
  checkArchitecture(p, path);
}

export const trainParams: s.ObjectSchema<TrainParams> = {
  ...(base as unknown as s.ObjectSchema<TrainParams>),
  parse(v: unknown, path: KeyPath): TrainParams {
    const p = base.parse(v, path) as TrainParams;
    checkParams(p, path);
    return p;
  },
};

export default registerStageKind<TrainParams>({
  kind: "train",
  version: 1,
  description: "train a recognizer (Adam, schedule, clipping, validation, resumable checkpoints)",
  params: trainParams,
  inputs: {
    train: { description: "training LMDB(s); several are concatenated", many: true },
    val: { description: "validation LMDB (the best checkpoint is chosen by word accuracy)", optional: true },
    init_vision: {
      description: "a model directory (its best.safetensors) that initialises the vision part (abinet: abinet_vision)",
      optional: true,
    },
    init_language: {
      description: "a model directory (its best.safetensors) that initialises the language part (abinet: pretrain_lm)",
      optional: true,
    },
  },
  outputs: {
    model: { type: "dir", description: "best.safetensors, last.safetensors, config.json" },
    curve: { type: "file", description: "JSONL: step, loss, loss_parts, lr, grad_norm, samples/s, val metrics" },
  },
  module: import.meta.url,
  resources: ["accelerator"],
  async environment(params) {
    checkArchitecture(params);
    const { backendFingerprint } = await import("../training/backend_fingerprint.ts");
    return { ...(await backendFingerprint(params.backend)) };
  },
  async run(ctx: StageContext<TrainParams>) {
    const { runTrain } = await import("../training/train_stage.ts");
    return await runTrain(ctx);
  },
});
