/** The `evaluate` stage's run (loaded lazily by tasks/evaluate.ts). */
import { basename, dirname, join } from "node:path";
import { charsetFor, type Protocol } from "../data/charset.ts";
import type { ResolvedInput, StageContext, StageResult } from "../pipeline/stage_kind.ts";
import type { EvaluateParams } from "../tasks/evaluate.ts";
import { prepareBackend } from "./backend.ts";
import { loadRecognizer } from "./checkpoint.ts";
import { openEvalData } from "./data.ts";
import { combineOutputs, evaluateModel, outputsSummary } from "./evaluation.ts";
import { combineMetrics, type TextMetrics } from "./metrics.ts";

export const METRICS_FORMAT = "strata-metrics-v1";

/** A data set's name: its import's `name` param, else the producing stage id, else the folder name. */
export function datasetName(input: ResolvedInput): string {
  const name = input.params?.name;
  if (typeof name === "string" && name !== "") return name;
  if (input.stageId && !input.stageId.startsWith("path:")) return input.stageId;
  return basename(input.path);
}

export async function runEvaluate(ctx: StageContext<EvaluateParams>): Promise<StageResult> {
  const p = ctx.params;
  const backend = await prepareBackend(p.backend, (l) => ctx.log(l));
  const modelInput = ctx.inputs.model?.[0];
  if (!modelInput) throw new Error(`${ctx.stageId}: input "model" is missing`);
  const checkpointPath = join(modelInput.path, `${p.checkpoint}.safetensors`);
  const { model, meta } = await loadRecognizer(checkpointPath);
  const modelCharset = charsetFor(meta.data.protocol as Protocol);
  const protocol = charsetFor(p.protocol);
  const image = {
    height: meta.data.height,
    width: meta.data.width,
    channels: meta.data.channels,
    normalize: meta.data.normalize as "imagenet" | "unit",
  };
  const notes: string[] = [];
  const names = new Map<string, number>();
  const results: (TextMetrics & { name: string; stage: string })[] = [];
  const predictionsPath = ctx.output("predictions");
  await Deno.mkdir(dirname(predictionsPath), { recursive: true });
  const tmp = `${predictionsPath}.partial`;
  const out = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let lines: string[] = [];
  const flush = async () => {
    if (lines.length === 0) return;
    const bytes = enc.encode(lines.join(""));
    let written = 0;
    while (written < bytes.length) written += await out.write(bytes.subarray(written));
    lines = [];
  };
  try {
    for (const input of ctx.inputs.datasets ?? []) {
      let name = datasetName(input);
      const seen = names.get(name) ?? 0;
      names.set(name, seen + 1);
      if (seen > 0) name = `${name}#${seen + 1}`;
      const data = await openEvalData(input.path, {
        image,
        protocol: p.protocol,
        // The test set is the protocol's, whatever the model can read: its max_length must not filter it.
        maxLength: p.max_length,
        policy: p.bad_input,
        limit: p.limit,
      }, p.batch_size);
      try {
        let done = 0;
        const metrics = await evaluateModel(model, data.batches(), modelCharset, protocol, async (sample) => {
          lines.push(JSON.stringify({ dataset: name, ...sample }) + "\n");
          if (lines.length >= 1000) await flush();
          if (++done % 100 === 0) ctx.progress(`${name}: ${done}/${data.size}`);
          if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error("evaluation aborted");
        });
        await flush();
        results.push({ name, stage: input.stageId, ...metrics });
        ctx.log(
          `${name}: ${metrics.samples} samples, word accuracy ${metrics.word_accuracy.toFixed(4)}, ` +
            `CCR ${metrics.ccr.toFixed(4)}` + (metrics.outputs ? `; per output: ${outputsSummary(metrics)}` : ""),
        );
        if (metrics.samples === 0) notes.push(`${name}: no usable samples`);
      } finally {
        await data.close();
      }
    }
  } finally {
    out.close();
    model.dispose();
  }
  await Deno.rename(tmp, predictionsPath);
  const combined = { ...combineMetrics(results), ...combineOutputs(results) };
  const training = meta.training as Record<string, unknown>;
  const report = {
    format: METRICS_FORMAT,
    protocol: p.protocol,
    checkpoint: p.checkpoint,
    model: {
      stage: modelInput.stageId,
      matrix: modelInput.matrix,
      params: modelInput.params,
      family: meta.model_family,
      config: meta.model_config,
      data: meta.data,
      step: training.step ?? null,
      val: training.val ?? null,
      parameters: training.parameters ?? null,
    },
    backend: backend.name,
    tfjs: backend.tfjsVersion,
    datasets: results,
    combined,
  };
  const metricsPath = ctx.output("metrics");
  await Deno.writeTextFile(`${metricsPath}.partial`, JSON.stringify(report, null, 2) + "\n");
  await Deno.rename(`${metricsPath}.partial`, metricsPath);
  return {
    summary: {
      combined: { samples: combined.samples, word_accuracy: combined.word_accuracy, ccr: combined.ccr },
      datasets: Object.fromEntries(results.map((r) => [r.name, { cwr: r.cwr, ccr: r.ccr, samples: r.samples }])),
    },
    notes,
  };
}
