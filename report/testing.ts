/**
 * Test helpers for reports: synthetic evaluate metrics and train curves
 * shaped like the evaluate and train stages write them, and a minimal stage
 * context for running the report stage outside the engine.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ResolvedInput, StageContext } from "../pipeline/stage_kind.ts";

export interface FixtureOptions {
  models?: string[];
  seeds?: number[];
  datasets?: Record<string, number>;
  /** Added to every rate of a model (to make one model better). */
  bias?: Record<string, number>;
  steps?: number;
  withVal?: boolean;
  /** "evaluate": metrics.json as tasks/evaluate.ts writes it (a file, `datasets` a list); "map": a directory
   * holding metrics.json with `datasets` a map by name (the tolerant older shape). */
  shape?: "evaluate" | "map";
  /** One evaluate instance per (model, seed, data set), matrix axis `dataset`, as evaluation cached per data set
   * writes them; also per-sample `predictions` files whose word accuracy follows the rates. */
  perDataset?: boolean;
}

/** Deterministic pseudo-random in [0, 1). */
function rand(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Writes metrics dirs and curve files under `dir`; returns the inputs the engine would deliver. */
export async function writeFixtures(
  dir: string,
  opts: FixtureOptions = {},
): Promise<{ metrics: ResolvedInput[]; curves: ResolvedInput[]; predictions: ResolvedInput[] }> {
  const models = opts.models ?? ["abinet_vision", "conclr_vision"];
  const seeds = opts.seeds ?? [1, 2, 3];
  const datasets = opts.datasets ?? { synth_test: 500, iiit5k: 3000, svt: 647 };
  const steps = opts.steps ?? 300;
  const metrics: ResolvedInput[] = [];
  const curves: ResolvedInput[] = [];
  const predictions: ResolvedInput[] = [];
  for (const [mi, model] of models.entries()) {
    for (const seed of seeds) {
      const r = rand(1000 * mi + seed);
      const bias = opts.bias?.[model] ?? 0;
      const trainParams = { model, seed, steps, batch_size: 32, lr: 1e-4, optimizer: { name: "adam", clip: 20 } };
      const matrix = { model, seed };
      const ds: Record<string, Record<string, number>> = {};
      for (const [name, count] of Object.entries(datasets)) {
        const base = name === "synth_test" ? 0.8 : 0.4;
        const cwr = Math.min(1, base + bias + 0.02 * r());
        ds[name] = {
          word_accuracy: cwr,
          cwr,
          ccr: Math.min(1, cwr + 0.1 + 0.01 * r()),
          one_minus_ned: Math.min(1, cwr + 0.12),
          mean_confidence: 0.5 + 0.3 * r(),
          mean_label_length: 5 + r(),
          count,
        };
      }
      const n = Object.values(datasets).reduce((a, b) => a + b, 0);
      const combined: Record<string, number> = {};
      for (const k of Object.keys(Object.values(ds)[0] ?? {})) {
        combined[k] = k === "count" ? n : Object.entries(ds).reduce((a, [name, m]) => a + m[k] * datasets[name], 0) / n;
      }
      if (opts.perDataset) {
        for (const [name, m] of Object.entries(ds)) {
          const dmatrix = { model, seed, dataset: name };
          const ddir = join(dir, `evaluate_${model}_${seed}_${name}`);
          await mkdir(ddir, { recursive: true });
          const { count, ...rest } = m;
          await writeFile(
            join(ddir, "metrics.json"),
            JSON.stringify({
              format: "strata-metrics-v1",
              model: { stage: `train[model=${model},seed=${seed}]`, matrix, params: trainParams, family: model },
              datasets: [{ name, stage: name, samples: count, ...rest }],
            }),
          );
          const lines: string[] = [];
          const pr = rand(7 + seed * 31 + mi);
          for (let i = 1; i <= count; i++) {
            const right = pr() < m.cwr;
            lines.push(JSON.stringify({ dataset: name, index: i, label: "word", prediction: right ? "word" : "wxrd" }));
          }
          await writeFile(join(ddir, "predictions.jsonl"), lines.join("\n") + "\n");
          const id = `evaluate[dataset=${name},model=${model},seed=${seed}]`;
          const common = { stageId: id, matrix: dmatrix, kind: "evaluate", params: { protocol: 36, batch_size: 64 } };
          const digest = (k: number) => `sha256:${(mi * 1000 + seed * 10 + k).toString(16).padStart(64, "0")}`;
          metrics.push({ ...common, path: join(ddir, "metrics.json"), output: "metrics", digest: digest(1) });
          predictions.push({
            ...common,
            path: join(ddir, "predictions.jsonl"),
            output: "predictions",
            digest: digest(2),
          });
        }
      }
      const shape = opts.shape ?? "evaluate";
      const mdir = join(dir, `evaluate_${model}_${seed}`);
      await mkdir(mdir, { recursive: true });
      const config = { d_model: 64, layers: 1, ...(model === "conclr_vision" ? { tau: 2, alpha: 0.2 } : {}) };
      const json = shape === "evaluate"
        ? {
          format: "strata-metrics-v1",
          protocol: 36,
          checkpoint: "best",
          model: {
            stage: `train[model=${model},seed=${seed}]`,
            matrix,
            params: trainParams,
            family: model,
            config,
            step: steps,
            parameters: 123456 + mi,
          },
          backend: "wasm",
          tfjs: "4.22.0",
          datasets: Object.entries(ds).map(([name, m]) => {
            const { count, ...rest } = m;
            return { name, stage: name, samples: count, ...rest };
          }),
          combined: (({ count, ...rest }) => ({ samples: count, ...rest }))(combined),
        }
        : {
          model: { family: model, params: trainParams, matrix },
          datasets: ds,
          combined,
          environment: { backend: "wasm", tfjs: "4.22.0" },
        };
      const mpath = shape === "evaluate" ? join(mdir, "metrics.json") : join(mdir, "metrics");
      if (shape === "map") await mkdir(mpath, { recursive: true });
      await writeFile(shape === "evaluate" ? mpath : join(mpath, "metrics.json"), JSON.stringify(json));
      if (!opts.perDataset) {
        metrics.push({
          path: mpath,
          stageId: `evaluate[model=${model},seed=${seed}]`,
          output: "metrics",
          matrix,
          kind: "evaluate",
          params: { protocol: 36, batch_size: 64 },
          digest: `sha256:${(mi * 100 + seed).toString(16).padStart(64, "0")}`,
        });
      }
      const lines: string[] = [];
      for (let step = 1; step <= steps; step += 5) {
        const loss = 3 * Math.exp(-step / (80 + 20 * mi)) + 0.3 + 0.2 * r();
        const line: Record<string, unknown> = {
          step,
          epoch: step / 100,
          loss,
          loss_parts: model === "conclr_vision" ? { recognition: loss * 0.8, contrastive: loss * 0.2 } : {},
          lr: 1e-4,
          grad_norm: 1,
          samples_per_s: 40 + r(),
          elapsed_s: step / 4,
        };
        if ((opts.withVal ?? true) && step % 50 === 1 && step > 1) {
          line.val = { word_accuracy: Math.min(1, 0.5 * (1 - Math.exp(-step / 100)) + bias), ccr: 0.6 };
        }
        lines.push(JSON.stringify(line));
      }
      const cfile = join(dir, `train_${model}_${seed}.jsonl`);
      await writeFile(cfile, lines.join("\n") + "\n");
      curves.push({
        path: cfile,
        stageId: `train[model=${model},seed=${seed}]`,
        output: "curve",
        matrix,
        kind: "train",
        params: trainParams,
        digest: `sha256:${(mi * 100 + seed + 50).toString(16).padStart(64, "0")}`,
      });
    }
  }
  return { metrics, curves, predictions };
}

/** A stage context good enough for stage kinds that only read inputs and write outputs. */
export function fakeContext<P>(
  dir: string,
  params: P,
  inputs: Record<string, ResolvedInput[]>,
  extra: Partial<StageContext<P>> = {},
): StageContext<P> & { logs: string[] } {
  const logs: string[] = [];
  return {
    params,
    inputs,
    input(name) {
      const p = inputs[name]?.[0]?.path;
      if (!p) throw new Error(`report: input ${name} is absent`);
      return p;
    },
    optionalInput: (name) => inputs[name]?.[0]?.path,
    output: (name) => join(dir, "out", name),
    workDir: dir,
    stageId: "report",
    experiment: "conclr_vs_abinet",
    experimentDir: dir,
    matrix: {},
    scratch: join(dir, "scratch"),
    log: (m) => logs.push(m),
    progress: () => {},
    signal: new AbortController().signal,
    logs,
    ...extra,
  };
}
