/**
 * Runs the report stage: builds the report data from the inputs, writes
 * `README.md`, `report.json` and the SVG charts into the `report` output.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { StageContext, StageResult } from "../pipeline/stage_kind.ts";
import type { ReportParams } from "../tasks/report.ts";
import { curveCharts } from "./curves.ts";
import { referencedFiles, tableProblems } from "./markdown.ts";
import { buildComparisons } from "./compare.ts";
import { buildReport, type ReportData } from "./model.ts";
import { renderReadme } from "./readme.ts";

/** Stage keys, timings and environments from a lock-shaped JSON file (`pipeline/provenance.ts` LockFile). */
async function readProvenance(path: string | undefined): Promise<Record<string, unknown>> {
  if (!path) return {};
  try {
    const json = JSON.parse(await Deno.readTextFile(path));
    if (!json || typeof json !== "object" || !json.stages || typeof json.stages !== "object") return {};
    const stages: Record<string, unknown> = {};
    for (const [id, s] of Object.entries(json.stages as Record<string, Record<string, unknown>>)) {
      if (!s || typeof s !== "object") continue;
      const timings = (s.timings ?? {}) as Record<string, unknown>;
      const components = (s.components ?? {}) as Record<string, unknown>;
      stages[id] = { key: s.key, seconds: timings.seconds, environment: components.env ?? s.environment };
    }
    return { stages, ...(json.environment ? { machine: json.environment } : {}) };
  } catch (e) {
    return { error: `${path}: ${e instanceof Error ? e.message : e}` };
  }
}

export async function writeReport(ctx: StageContext<ReportParams>, version: number): Promise<StageResult> {
  const p = ctx.params;
  const provenanceInput = ctx.inputs.provenance?.[0]?.path;
  const built = await buildReport(ctx.inputs.metrics ?? [], ctx.inputs.curves ?? [], {
    experiment: ctx.experiment,
    stageId: ctx.stageId,
    title: p.title,
    description: p.description,
    note: p.note,
    seedAxis: p.seed_axis,
    datasetAxis: p.dataset_axis,
    rows: p.headline.rows,
    columns: p.headline.columns,
    metrics: p.headline.metrics,
    layout: p.headline.layout as "wide" | "long",
    combined: p.headline.combined,
    average: p.headline.average,
    displayNames: p.display_names,
    provenance: {
      generator: `strata report v${version} (Deno ${Deno.version.deno})`,
      ...(await readProvenance(provenanceInput)),
    },
  });
  const { curves } = built;
  let data: ReportData = built.data;
  const cmp = p.compare;
  if (cmp.baseline && cmp.treatment && (ctx.inputs.predictions ?? []).length) {
    const warnings = [...data.warnings];
    const comparisons = await buildComparisons(ctx.inputs.predictions ?? [], {
      axis: cmp.axis,
      baseline: cmp.baseline,
      treatment: cmp.treatment,
      seedAxis: p.seed_axis,
      replicates: cmp.replicates,
      seed: cmp.seed,
      order: data.headline.columns,
    }, warnings);
    data = { ...data, comparisons, warnings };
  }
  const charts = curveCharts(curves, {
    smooth: p.curves.smooth,
    valMetric: p.curves.val_metric,
    valLabel: p.curves.val_metric.replace(/_/g, " "),
    seedAxis: p.seed_axis,
  });
  const figures = (ctx.inputs.figures ?? []).map((f, i) => ({
    source: f.path,
    file: `figure_${i + 1}_${f.stageId.replace(/[^A-Za-z0-9_.-]+/g, "_")}.png`,
    title: f.stageId,
    caption: p.figure_captions[f.stageId] ?? f.stageId,
  }));
  const readme = renderReadme(data, { digits: p.digits, percent: p.percent, charts, expected: p.expected, figures });

  // Self-checks: a broken table or a dangling image is a bug here, not something to publish.
  const problems = tableProblems(readme);
  const files = new Set(["README.md", "report.json", ...charts.map((c) => c.file), ...figures.map((f) => f.file)]);
  for (const f of referencedFiles(readme)) if (!files.has(f)) problems.push(`README.md refers to missing ${f}`);
  if (problems.length) throw new Error(`${ctx.stageId}: generated README.md is not valid: ${problems.join("; ")}`);

  const dir = ctx.output("report");
  await mkdir(dir, { recursive: true });
  for (const c of charts) await writeFile(join(dir, c.file), c.svg);
  for (const f of figures) await writeFile(join(dir, f.file), await Deno.readFile(f.source));
  await writeFile(join(dir, "report.json"), JSON.stringify(data, null, 2) + "\n");
  await writeFile(join(dir, "README.md"), readme);
  for (const w of data.warnings) ctx.log(`warning: ${w}`);

  const headline: Record<string, Record<string, number | null>> = {};
  for (const g of data.groups) {
    headline[g.label] = {};
    for (const d of data.headline.columns) {
      for (const m of data.headline.metrics) headline[g.label][`${d}.${m}`] = g.metrics[d]?.[m]?.mean ?? null;
    }
  }
  return {
    summary: { groups: data.groups.length, runs: data.groups.reduce((a, g) => a + g.n, 0), headline },
    notes: [
      `report: ${data.groups.length} run groups × ${data.datasets.length} data sets, ${charts.length} charts`,
      ...(data.warnings.length ? [`report: ${data.warnings.length} warnings (listed in README.md)`] : []),
    ],
  };
}
