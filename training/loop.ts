/**
 * The training loop: Adam + schedule + global-norm clipping over a `Recognizer`, periodic validation keeping
 * the best weights, resumable checkpoints and a JSONL curve. Model- and data-agnostic: the caller supplies
 * the batches (`TrainData`) and the validation function.
 *
 * Determinism: the model is created from `seed`, batch `s` depends only on (seed, s), and the per-step random
 * source given to `trainingLoss` is derived from (seed, s); with the optimiser moments and step restored, a
 * run resumed from a checkpoint at step k computes exactly the updates k+1… of an uninterrupted run.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import type { Batch } from "../data/batch.ts";
import type { Recognizer } from "../models/recognizer.ts";
import { Adam } from "./adam.ts";
import { type CheckpointMeta, readCheckpoint, restoreInto, saveCheckpoint } from "./checkpoint.ts";
import type { TextMetrics } from "./metrics.ts";
import { deriveSeed, Rng } from "./random.ts";
import { makeSchedule, type ScheduleConfig } from "./schedule.ts";

export interface TrainData {
  /** Batches from 0-based update `fromStep` on; the same (seed, step) must always give the same batch. */
  batches(fromStep: number): AsyncIterator<Batch>;
}

/** One line of the curve JSONL. Training fields are averages over the steps since the previous line. */
export interface CurveRow {
  step: number;
  epoch: number;
  loss: number;
  loss_parts: Record<string, number>;
  lr: number;
  grad_norm: number;
  samples_per_s: number;
  elapsed_s: number;
  /** Present on lines where validation ran. */
  val?: TextMetrics;
}

export interface TrainLoopOptions {
  model: Recognizer;
  data: TrainData;
  /** Total updates. */
  steps: number;
  stepsPerEpoch: number;
  lr: number;
  schedule: ScheduleConfig;
  /** Global-norm clipping threshold; ≤ 0 disables. */
  clipGradNorm: number;
  seed: number;
  /** Where resumable state lives (`resume.safetensors`, `best.safetensors`, `curve.jsonl`, `last.safetensors`). */
  scratch: string;
  checkpointEvery: number;
  /** 0 disables periodic validation (it still runs at the end when `validate` is given). */
  validateEvery: number;
  logEvery: number;
  validate?: (model: Recognizer) => Promise<TextMetrics>;
  meta: CheckpointMeta;
  signal?: AbortSignal;
  progress?: (message: string) => void;
  log?: (message: string) => void;
  /** Called after each completed update (tests use it to interrupt). */
  onStep?: (step: number) => void;
}

export interface TrainLoopResult {
  steps: number;
  resumedFrom: number;
  bestStep: number;
  bestMetrics?: TextMetrics;
  lastMetrics?: TextMetrics;
  finalLoss: number;
  /** Paths inside `scratch`. */
  bestPath: string;
  lastPath: string;
  curvePath: string;
}

interface State {
  step: number;
  seed: number;
  bestStep: number;
  bestAccuracy: number;
  bestMetrics?: TextMetrics;
  lastMetrics?: TextMetrics;
  /** Loss of the latest update. */
  lastLoss?: number;
  /** Sums since the last curve line. */
  acc: { count: number; loss: number; parts: Record<string, number>; gradNorm: number; lr: number };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

export interface StepResult {
  loss: number;
  parts: Record<string, number>;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

/**
 * One training update: forward + backward (`trainingLoss` inside `tf.variableGrads`), global-norm clipping,
 * Adam with learning rate `lr`. Reads back the loss, its parts and the gradient norm; leaves no tensor behind.
 */
export function makeTrainStep(
  model: Recognizer,
  optimizer: Adam,
  clipGradNorm: number,
  seed: number,
): (batch: Batch, step: number, lr: number) => Promise<StepResult> {
  const names = [...model.weights.keys()];
  const vars = names.map((n) => model.weights.get(n)!);
  return async (batch, s, lr) => {
    // `variableGrads` runs the function in a tidy scope, so the loss parts are kept explicitly and disposed
    // below.
    let parts: Record<string, tf.Scalar> = {};
    const { value, grads } = tf.variableGrads(() => {
      const images = tf.tensor4d(batch.images, batch.shape);
      const random = new Rng(deriveSeed(seed, "step", s)).fn();
      const out = model.trainingLoss(batch, images, { step: s, random });
      parts = out.parts;
      for (const p of Object.values(parts)) if (p !== out.loss) tf.keep(p);
      return out.loss;
    }, vars);
    const named = new Map<string, tf.Tensor>();
    for (const [i, v] of vars.entries()) if (grads[v.name]) named.set(names[i], grads[v.name]);
    let norm: tf.Scalar | undefined;
    let scalars: tf.Tensor | undefined;
    try {
      norm = optimizer.clipAndApply(named, lr, clipGradNorm);
      // One host read per step for every logged scalar (each read waits for the device).
      const partNames = Object.keys(parts).filter((k) => !parts[k].isDisposed);
      const n = norm;
      scalars = tf.tidy(() => tf.stack([value, n, ...partNames.map((k) => parts[k])]));
      const read = await scalars.data();
      const loss = read[0];
      const gradNorm = read[1];
      const values: Record<string, number> = {};
      for (const k of Object.keys(parts)) values[k] = loss;
      partNames.forEach((k, i) => (values[k] = read[2 + i]));
      return { loss, parts: values, gradNorm };
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
      if (norm) norm.dispose();
      if (scalars) scalars.dispose();
      for (const p of Object.values(parts)) if (!p.isDisposed) p.dispose();
    }
  };
}

export async function trainLoop(o: TrainLoopOptions): Promise<TrainLoopResult> {
  const paths = {
    resume: join(o.scratch, "resume.safetensors"),
    best: join(o.scratch, "best.safetensors"),
    last: join(o.scratch, "last.safetensors"),
    curve: join(o.scratch, "curve.jsonl"),
  };
  await Deno.mkdir(o.scratch, { recursive: true });
  const log = o.log ?? (() => {});
  const optimizer = new Adam(o.model.weights);
  const step = makeTrainStep(o.model, optimizer, o.clipGradNorm, o.seed);
  const lrAt = makeSchedule(o.lr, o.schedule, o.steps, o.stepsPerEpoch);

  let state: State = {
    step: 0,
    seed: o.seed,
    bestStep: 0,
    bestAccuracy: -1,
    acc: { count: 0, loss: 0, parts: {}, gradNorm: 0, lr: 0 },
  };
  let curveLines: string[] = [];
  if (await exists(paths.resume)) {
    const ck = await readCheckpoint(paths.resume);
    const saved = ck.state as unknown as State | undefined;
    if (!saved || saved.seed !== o.seed) throw new Error(`${paths.resume}: no training state for seed ${o.seed}`);
    restoreInto(ck.file, paths.resume, o.model, optimizer);
    state = saved;
    if (optimizer.step !== state.step) {
      throw new Error(`${paths.resume}: optimizer.step ${optimizer.step} ≠ train_state.step ${state.step}`);
    }
    if (await exists(paths.curve)) {
      curveLines = (await Deno.readTextFile(paths.curve)).split("\n").filter((l) =>
        l.trim() !== "" && (JSON.parse(l) as CurveRow).step <= state.step
      );
    }
    log(`resuming from ${paths.resume} at step ${state.step}/${o.steps}`);
  } else {
    await Deno.remove(paths.best).catch(() => {});
  }
  await Deno.writeTextFile(paths.curve, curveLines.map((l) => l + "\n").join(""));
  const resumedFrom = state.step;

  const saveResume = async () => {
    await saveCheckpoint(paths.resume, {
      model: o.model,
      meta: { ...o.meta, training: { ...o.meta.training, step: state.step } },
      optimizer,
      state: state as unknown as Record<string, unknown>,
    });
  };
  const saveWeights = async (path: string, metrics?: TextMetrics) => {
    await saveCheckpoint(path, {
      model: o.model,
      meta: { ...o.meta, training: { ...o.meta.training, step: state.step, ...(metrics ? { val: metrics } : {}) } },
    });
  };

  const started = performance.now();
  let rowStarted = performance.now();
  let lastSaved = state.step;
  const iterator = o.data.batches(state.step);
  try {
    while (state.step < o.steps) {
      if (o.signal?.aborted) {
        if (state.step > lastSaved) await saveResume();
        throw o.signal.reason ?? new Error("training aborted");
      }
      const next = await iterator.next();
      if (next.done) throw new Error(`training data ended at step ${state.step} of ${o.steps}`);
      const batch = next.value;
      const s = state.step;
      const lr = lrAt(s);

      const { loss: lossValue, parts: partValues, gradNorm: normValue } = await step(batch, s, lr);
      if (!Number.isFinite(lossValue)) throw new Error(`training diverged: loss ${lossValue} at step ${s + 1}`);
      state.lastLoss = lossValue;

      state.step = s + 1;
      const a = state.acc;
      a.count++;
      a.loss += lossValue;
      a.gradNorm += normValue;
      a.lr += lr;
      for (const [k, v] of Object.entries(partValues)) a.parts[k] = (a.parts[k] ?? 0) + v;
      const done = state.step === o.steps;

      let val: TextMetrics | undefined;
      if (o.validate && ((o.validateEvery > 0 && state.step % o.validateEvery === 0) || done)) {
        val = await o.validate(o.model);
        state.lastMetrics = val;
        log(`step ${state.step}: validation word accuracy ${val.word_accuracy.toFixed(4)} (${val.samples} samples)`);
        if (val.word_accuracy > state.bestAccuracy) {
          state.bestAccuracy = val.word_accuracy;
          state.bestStep = state.step;
          state.bestMetrics = val;
          await saveWeights(paths.best, val);
        }
      }
      if (val || state.step % o.logEvery === 0 || done) {
        const now = performance.now();
        const row: CurveRow = {
          step: state.step,
          epoch: state.step / o.stepsPerEpoch,
          loss: a.loss / a.count,
          loss_parts: Object.fromEntries(Object.entries(a.parts).map(([k, v]) => [k, v / a.count])),
          lr: a.lr / a.count,
          grad_norm: a.gradNorm / a.count,
          samples_per_s: a.count * batch.shape[0] / Math.max(1e-9, (now - rowStarted) / 1000),
          elapsed_s: (now - started) / 1000,
          ...(val ? { val } : {}),
        };
        await Deno.writeTextFile(paths.curve, JSON.stringify(row) + "\n", { append: true });
        state.acc = { count: 0, loss: 0, parts: {}, gradNorm: 0, lr: 0 };
        rowStarted = now;
      }
      if (state.step % o.checkpointEvery === 0 || done) {
        await saveResume();
        lastSaved = state.step;
      }
      const elapsed = (performance.now() - started) / 1000;
      const perStep = elapsed / (state.step - resumedFrom);
      o.progress?.(
        `step ${state.step}/${o.steps} loss ${lossValue.toFixed(4)} ` +
          `${(batch.shape[0] / perStep).toFixed(1)} samples/s ETA ${formatDuration(perStep * (o.steps - state.step))}`,
      );
      o.onStep?.(state.step);
    }
    await saveWeights(paths.last, state.lastMetrics);
    if (!o.validate) await Deno.copyFile(paths.last, paths.best);
  } finally {
    await iterator.return?.();
    optimizer.dispose();
  }
  return {
    steps: state.step,
    resumedFrom,
    bestStep: o.validate ? state.bestStep : state.step,
    bestMetrics: state.bestMetrics,
    lastMetrics: state.lastMetrics,
    finalLoss: state.lastLoss ?? NaN,
    bestPath: paths.best,
    lastPath: paths.last,
    curvePath: paths.curve,
  };
}
