/** The `evaluate` stage's run (loaded lazily by tasks/evaluate.ts). */
import { basename, dirname, join } from "node:path";
import { charsetFor, type Protocol } from "../data/charset.ts";
import type { ResolvedInput, StageContext, StageResult } from "../pipeline/stage_kind.ts";
import type { EvaluateParams } from "../tasks/evaluate.ts";
import { prepareBackend } from "./backend.ts";
import { loadRecognizer } from "./checkpoint.ts";
import { openEvalData } from "./data.ts";
import { combineOutputs, evaluateModel, outputsSummary, type Rotation } from "./evaluation.ts";
import { combineMetrics, type TextMetrics } from "./metrics.ts";
import { predictOptions } from "./predict.ts";
import { costTable, measureCost, type ModelCost } from "./cost.ts";
import { filteringCounts, type FilteringRow, filteringTable, strhubTable } from "./strhub_table.ts";

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
  const decoding = predictOptions(model, p, ctx.stageId);
  const rotations = (p.rotation ?? [0]) as Rotation[];
  let cost: ModelCost | undefined;
  if (p.cost) {
    ctx.progress("measuring parameters, FLOPs and latency");
    cost = await measureCost(model, [meta.data.height, meta.data.width, meta.data.channels], { decoding });
  }
  // Model-level costs repeated in every row, so report tables can show them beside the accuracies.
  const costFields = cost
    ? {
      params_m: cost.modules[0].parameters / 1e6,
      gflops: cost.modules[0].flops / 1e9,
      ms_per_image: cost.secondsPerImage * 1000,
    }
    : {};
  const modelCharset = charsetFor(meta.data.protocol as Protocol);
  const protocol = charsetFor(p.protocol);
  const image = {
    height: meta.data.height,
    width: meta.data.width,
    channels: meta.data.channels,
    normalize: meta.data.normalize as "imagenet" | "unit" | "symmetric",
  };
  const notes: string[] = [];
  const names = new Map<string, number>();
  const results: (TextMetrics & {
    name: string;
    stage: string;
    dataset: string;
    rotation: number;
    not_scored?: Record<string, number>;
  })[] = [];
  const filtering: FilteringRow[] = [];
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
        const summary = data.dataset.summary();
        const counts = filteringCounts(summary.sources);
        filtering.push({ name, stored: summary.stored, usable: data.size, ...counts });
        // Samples the loader left out (labels longer than the model's max_length, unsupported characters, bad
        // samples under bad_input: skip): counted and said, not absorbed into a smaller denominator. The same
        // drop counts as the label-filtering table (bad samples prefixed bad_), noted once per data set.
        const dropped = Object.values(counts.dropped).reduce((a, b) => a + b, 0);
        if (dropped) {
          notes.push(
            `${name}: ${dropped} of ${summary.stored} samples not scored (${
              Object.entries(counts.dropped).map(([k, v]) => `${k}: ${v}`).join(", ")
            })${
              counts.dropped.too_long
                ? `; too_long = label longer than the model's max_length ${meta.data.max_length}`
                : ""
            }`,
          );
        }
        for (const rotation of rotations) {
          // Rotated copies are named `set@90` etc., so reports keyed by data set name keep them apart.
          const rowName = rotation === 0 ? name : `${name}@${rotation}`;
          let done = 0;
          const metrics = await evaluateModel(model, data.batches(), modelCharset, protocol, async (sample) => {
            lines.push(JSON.stringify({ dataset: rowName, ...sample }) + "\n");
            if (lines.length >= 1000) await flush();
            if (++done % 100 === 0) ctx.progress(`${rowName}: ${done}/${data.size}`);
            if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error("evaluation aborted");
          }, { predict: decoding, rotation });
          await flush();
          results.push({
            name: rowName,
            stage: input.stageId,
            dataset: name,
            rotation,
            ...metrics,
            ...costFields,
            // In metrics.json too (every rotation's row misses the same samples): the report lists it.
            ...(dropped ? { not_scored: { ...counts.dropped } } : {}),
          });
          ctx.log(
            `${rowName}: ${metrics.samples} samples, word accuracy ${metrics.word_accuracy.toFixed(4)}, ` +
              `CCR ${metrics.ccr.toFixed(4)}` + (metrics.outputs ? `; per output: ${outputsSummary(metrics)}` : ""),
          );
          if (metrics.samples === 0 && rotation === rotations[0]) notes.push(`${name}: no usable samples`);
        }
      } finally {
        await data.close();
      }
    }
  } finally {
    out.close();
    model.dispose();
  }
  await Deno.rename(tmp, predictionsPath);
  // Combined over the data sets at one rotation, as strhub's table: the first rotation listed (0 by default).
  // Each named output (ABINet's vision / language_i / alignment_i) is combined the same way.
  const byRotation = new Map(rotations.map((r) => {
    const rows = results.filter((x) => x.rotation === r);
    return [r, { ...combineMetrics(rows), ...combineOutputs(rows), ...costFields }];
  }));
  const combined = byRotation.get(rotations[0])!;
  const tables = rotations.map((r) => {
    const title = rotations.length > 1 || r !== 0 ? `### Rotation ${r}°\n\n` : "";
    return title + strhubTable(results.filter((x) => x.rotation === r), byRotation.get(r)!);
  });
  const decodingNote = model.decodingParams
    ? `decode_ar ${decoding.decodeAr ?? (meta.model_config as Record<string, unknown>).decode_ar}, refine_iters ${
      decoding.refineIters ?? (meta.model_config as Record<string, unknown>).refine_iters
    }`
    : "";
  const tableText = [
    `## ${meta.model_family} (${modelInput.stageId}), protocol ${p.protocol}${decodingNote ? `, ${decodingNote}` : ""}`,
    "",
    ...tables.flatMap((t) => [t, ""]),
    ...(cost
      ? [
        "### Cost (batch 1)",
        "",
        costTable(cost),
        "",
        `${(cost.secondsPerImage * 1000).toFixed(1)} ms/image on ${backend.name}`,
        "",
      ]
      : []),
    "### Label filtering per data set",
    "",
    filteringTable(filtering),
    "",
  ].join("\n");
  const tablePath = ctx.output("table");
  await Deno.writeTextFile(`${tablePath}.partial`, tableText);
  await Deno.rename(`${tablePath}.partial`, tablePath);
  ctx.log(tableText);
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
    decoding: model.decodingParams
      ? { decode_ar: decoding.decodeAr ?? null, refine_iters: decoding.refineIters ?? null }
      : null,
    rotations,
    cost: cost ?? null,
    datasets: results,
    combined,
    combined_by_rotation: Object.fromEntries(byRotation),
    filtering,
  };
  const metricsPath = ctx.output("metrics");
  await Deno.writeTextFile(`${metricsPath}.partial`, JSON.stringify(report, null, 2) + "\n");
  await Deno.rename(`${metricsPath}.partial`, metricsPath);
  return {
    summary: {
      combined: { samples: combined.samples, word_accuracy: combined.word_accuracy, ccr: combined.ccr },
      datasets: Object.fromEntries(
        results.map((r) => [r.name, {
          cwr: r.cwr,
          ccr: r.ccr,
          samples: r.samples,
          ...(r.not_scored ? { not_scored: r.not_scored } : {}),
        }]),
      ),
    },
    notes,
  };
}
