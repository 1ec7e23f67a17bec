/** The `train` stage's run (loaded lazily by tasks/train.ts): data, model, loop, outputs. */
import { join } from "node:path";
import { charsetFor } from "../data/charset.ts";
import { getModelFamily, type Recognizer } from "../models/recognizer.ts";
import type { StageContext, StageResult } from "../pipeline/stage_kind.ts";
import { checkArchitecture, type TrainParams } from "../tasks/train.ts";
import { loadModelFamilies } from "./families.ts";
import { prepareBackend } from "./backend.ts";
import { CHECKPOINT_FORMAT, type CheckpointMeta, type DataConfig, readCheckpoint } from "./checkpoint.ts";
import { openEvalData, openTrainData } from "./data.ts";
import { evaluateModel } from "./evaluation.ts";
import { trainLoop } from "./loop.ts";

export async function runTrain(ctx: StageContext<TrainParams>): Promise<StageResult> {
  const p = ctx.params;
  await loadModelFamilies();
  const family = getModelFamily(p.model);
  const architecture = checkArchitecture(p)!;
  const backend = await prepareBackend(p.backend, (l) => ctx.log(l));
  ctx.log(`backend ${backend.name} (${backend.details}), tfjs ${backend.tfjsVersion}`);
  const charset = charsetFor(p.data.labels.protocol);

  const trainPaths = (ctx.inputs.train ?? []).map((i) => i.path);
  if (trainPaths.length === 0) throw new Error(`${ctx.stageId}: input "train" is empty`);
  const train = await openTrainData(trainPaths, p.data, p.batch_size, p.seed);
  const valPath = ctx.optionalInput("val");
  const val = valPath
    ? await openEvalData(valPath, {
      image: p.data.image,
      protocol: p.data.labels.protocol,
      maxLength: p.data.labels.max_length,
      unsupported: p.data.labels.unsupported,
      policy: p.data.bad_input,
      limit: p.val_samples,
    }, p.batch_size)
    : undefined;
  const notes: string[] = [];
  const stepsPerEpoch = Math.max(1, Math.floor(train.size / p.batch_size));
  const steps = p.steps ?? Math.max(1, Math.round(p.epochs! * stepsPerEpoch));
  ctx.log(
    `train: ${train.size} usable samples from ${trainPaths.length} set(s), ` +
      `${steps} steps of ${p.batch_size} (${(steps / stepsPerEpoch).toFixed(2)} epochs)` +
      (val ? `; val: ${val.size} samples` : "; no validation set"),
  );
  if (!valPath) notes.push("no `val` input: best.safetensors is the last checkpoint");

  checkConsistency(architecture, p);
  const model = family.create(architecture, p.seed, charset.numClasses);
  if (model.numClasses !== charset.numClasses) {
    throw new Error(
      `${p.model}: model has ${model.numClasses} classes, protocol ${p.data.labels.protocol} needs ${charset.numClasses}`,
    );
  }
  let initialised;
  try {
    initialised = await initialiseParts(ctx, model, p.model);
  } catch (e) {
    model.dispose();
    await train.close();
    await val?.close();
    throw e;
  }
  const paramCount = [...model.weights.values()].reduce((a, v) => a + v.size, 0);
  const training = {
    params: p,
    stage: ctx.stageId,
    matrix: ctx.matrix,
    backend: backend.name,
    tfjs: backend.tfjsVersion,
    steps,
    train_samples: train.size,
    parameters: paramCount,
    ...(initialised.length ? { initialised_from: initialised } : {}),
  };
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    model_family: p.model,
    model_config: architecture,
    num_classes: charset.numClasses,
    data: dataConfig(p),
    training,
  };
  try {
    const result = await trainLoop({
      model,
      data: train.data,
      steps,
      stepsPerEpoch,
      lr: p.lr,
      schedule: p.schedule,
      clipGradNorm: p.clip_grad_norm,
      seed: p.seed,
      scratch: ctx.scratch,
      checkpointEvery: p.checkpoint_every,
      validateEvery: p.validate_every,
      logEvery: p.log_every,
      validate: val ? (m) => evaluateModel(m, val.batches(), charset) : undefined,
      meta,
      signal: ctx.signal,
      progress: (m) => ctx.progress(m),
      log: (m) => ctx.log(m),
    });
    if (result.resumedFrom > 0) notes.push(`resumed from the checkpoint at step ${result.resumedFrom}`);
    const outDir = ctx.output("model");
    await Deno.mkdir(outDir, { recursive: true });
    await Deno.copyFile(result.bestPath, join(outDir, "best.safetensors"));
    await Deno.copyFile(result.lastPath, join(outDir, "last.safetensors"));
    const config = {
      ...meta,
      best: { step: result.bestStep, val: result.bestMetrics ?? null },
      last: { step: result.steps, val: result.lastMetrics ?? null, loss: result.finalLoss },
    };
    await Deno.writeTextFile(join(outDir, "config.json"), JSON.stringify(config, null, 2) + "\n");
    await Deno.copyFile(result.curvePath, ctx.output("curve"));
    const rows = (await Deno.readTextFile(result.curvePath)).trim().split("\n").map((l) => JSON.parse(l));
    const speed = rows.map((r) => r.samples_per_s).filter((x) => Number.isFinite(x));
    return {
      summary: {
        steps: result.steps,
        resumed_from: result.resumedFrom,
        final_loss: result.finalLoss,
        best_step: result.bestStep,
        best_val_word_accuracy: result.bestMetrics?.word_accuracy ?? null,
        samples_per_s: speed.length ? speed.reduce((a, b) => a + b, 0) / speed.length : null,
        parameters: paramCount,
        backend: backend.name,
        train_samples: train.size,
      },
      notes,
    };
  } finally {
    model.dispose();
    await train.close();
    await val?.close();
  }
}

/** The train inputs `init_<part>`: another stage's model directory whose best weights start that part. */
const INIT_PARTS = ["vision", "language"] as const;

/**
 * Loads each given `init_<part>` checkpoint into the model (`Recognizer.initFrom`) before training; a resumed
 * run then overwrites everything with its own checkpoint. Returns what was loaded, for the checkpoint metadata.
 */
async function initialiseParts(
  ctx: StageContext<TrainParams>,
  model: Recognizer,
  family: string,
): Promise<{ part: string; stage: string; family: string; tensors: number }[]> {
  const done = [];
  for (const part of INIT_PARTS) {
    const input = ctx.inputs[`init_${part}`]?.[0];
    if (!input) continue;
    if (!model.initFrom) throw new Error(`${ctx.stageId}: model ${family} cannot take an init_${part} input`);
    const path = (await Deno.stat(input.path)).isDirectory ? join(input.path, "best.safetensors") : input.path;
    const ck = await readCheckpoint(path);
    if (ck.meta.num_classes !== model.numClasses) {
      throw new Error(`${path}: ${ck.meta.num_classes} classes, the model has ${model.numClasses}`);
    }
    const tensors = model.initFrom(part, ck.meta.model_family, ck.file.tensors, path);
    ctx.log(`init_${part}: ${tensors} tensors from ${input.stageId} (${ck.meta.model_family}, ${path})`);
    done.push({ part, stage: input.stageId, family: ck.meta.model_family, tensors });
  }
  return done;
}

/** What evaluate / read need to preprocess like training did. */
export function dataConfig(p: TrainParams): DataConfig {
  return {
    height: p.data.image.height,
    width: p.data.image.width,
    channels: p.data.image.channels,
    normalize: p.data.image.normalize,
    protocol: p.data.labels.protocol,
    max_length: p.data.labels.max_length,
    unsupported: p.data.labels.unsupported,
  };
}

/** Architecture fields that must agree with the data params (when the family has them). */
function checkConsistency(arch: Record<string, unknown>, p: TrainParams): void {
  const pairs: [string, number, string][] = [
    ["image_height", p.data.image.height, "data.image.height"],
    ["image_width", p.data.image.width, "data.image.width"],
    ["image_channels", p.data.image.channels, "data.image.channels"],
    ["max_length", p.data.labels.max_length, "data.labels.max_length"],
    ["height", p.data.image.height, "data.image.height"],
    ["width", p.data.image.width, "data.image.width"],
    ["in_channels", p.data.image.channels, "data.image.channels"],
  ];
  // A composite model (abinet) keeps its image and length fields in its vision config.
  const vision = arch.vision !== null && typeof arch.vision === "object" ? arch.vision as Record<string, unknown> : {};
  for (const [prefix, config] of [["", arch], ["vision.", vision]] as const) {
    for (const [key, want, where] of pairs) {
      if (key in config && config[key] !== want) {
        throw new Error(`architecture.${prefix}${key} is ${config[key]} but ${where} is ${want}; they must agree`);
      }
    }
  }
}
