/**
 * The report's data model (what `report.json` holds) and how it is built from
 * the evaluate stages' `metrics.json` files and the train stages' JSONL
 * curves: runs are grouped by their matrix values except the seed axis, and
 * every metric is summarised over the seeds of a group (mean ± sample std).
 *
 * Parsing is tolerant: a missing field becomes a warning in the report, not
 * a crash, so that a report always shows what there is.
 */
import { join } from "node:path";
import type { Comparison } from "./compare.ts";
import { summarize, type Summary } from "./stats.ts";

export type Scalar = string | number | boolean;

/** One upstream output, as the engine delivers it (a subset of `ResolvedInput`). */
export interface RunInput {
  readonly path: string;
  readonly stageId: string;
  readonly matrix: Readonly<Record<string, Scalar>>;
  readonly params: Readonly<Record<string, unknown>>;
  readonly digest: string;
  readonly kind?: string;
  readonly output?: string;
}

export const REPORT_FORMAT = "strata-report/1";

/** Metrics the report knows, in display order, with which direction is better. */
export const METRICS: Readonly<Record<string, { label: string; better: "higher" | "lower" | null; digits?: number }>> =
  {
    ccr: { label: "CCR", better: "higher" },
    cwr: { label: "CWR", better: "higher" },
    word_accuracy: { label: "Word acc.", better: "higher" },
    one_minus_ned: { label: "1-NED", better: "higher" },
    mean_confidence: { label: "Confidence", better: null },
    mean_label_length: { label: "Label length", better: null, digits: 2 },
    count: { label: "Count", better: null, digits: 0 },
    // Model costs (evaluate `cost: true`), the same in every data set row.
    params_m: { label: "Params (M)", better: "lower", digits: 2 },
    gflops: { label: "GFLOPs", better: "lower", digits: 3 },
    ms_per_image: { label: "ms/image", better: "lower", digits: 1 },
  };
export const METRIC_NAMES = Object.keys(METRICS);

/** Metrics that a multi-output model (ABINet) reports per output: `cwr@alignment_1`, `ccr@vision`, … */
export const OUTPUT_METRICS = ["ccr", "cwr", "word_accuracy", "one_minus_ned", "mean_confidence"];

/** How an output name reads in a column header: `alignment_2` → `it. 2`, `language_1` → `LM 1`. */
export function outputLabel(output: string): string {
  const m = /^(alignment|language)_(\d+)$/.exec(output);
  if (!m) return output;
  return m[1] === "alignment" ? `it. ${m[2]}` : `LM ${m[2]}`;
}

/** A metric's label and direction: a name of METRICS, or `metric@output` (one output of a multi-output model). */
export function metricInfo(
  m: string,
): { label: string; better: "higher" | "lower" | null; digits?: number } | undefined {
  const at = m.indexOf("@");
  if (at < 0) return METRICS[m];
  const base = METRICS[m.slice(0, at)];
  return base && { ...base, label: `${base.label} ${outputLabel(m.slice(at + 1))}` };
}

export const DEFAULT_DISPLAY_NAMES: Readonly<Record<string, string>> = {
  abinet_vision: "ABINet-Vision",
  conclr_vision: "ConCLR-Vision",
  synth_test: "Synth test",
  iiit5k: "IIIT5k",
  iiit5k_3000: "IIIT5k-3000",
  svt: "SVT",
  ic13: "IC13",
  ic13_857: "IC13-857",
  ic15: "IC15",
  cute80: "CUTE80",
  svtp: "SVTP",
  combined: "Combined",
  average: "Average",
  abinet: "ABINet",
  ic15_1811: "IC15-1811",
};

// ---------------------------------------------------------------------------
// Inputs

export interface ParsedMetrics {
  readonly family?: string;
  /** Train params recorded by the evaluate stage (`model.params`). */
  readonly trainParams: Record<string, unknown>;
  /** The model's resolved config (`model.config`), when recorded. */
  readonly modelConfig?: Record<string, unknown>;
  /** Parameter count and training step of the evaluated weights (`model.parameters`, `model.step`). */
  readonly parameters?: number;
  readonly step?: number;
  readonly matrix: Record<string, Scalar>;
  /** Per data set: numeric metric values (`count` normalised from `samples` when needed). */
  readonly datasets: Record<string, Record<string, number>>;
  readonly combined?: Record<string, number>;
  /** Anything else at the top level (environment, backend, timings…), kept for provenance. */
  readonly extra: Record<string, unknown>;
  readonly warnings: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function numericFields(v: unknown, where: string, warnings: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isRecord(v)) {
    warnings.push(`${where}: expected a map of metrics`);
    return out;
  }
  for (const [k, x] of Object.entries(v)) if (typeof x === "number" && Number.isFinite(x)) out[k] = x;
  if (out.count === undefined && out.samples !== undefined) out.count = out.samples;
  if (out.cwr === undefined && out.word_accuracy !== undefined) out.cwr = out.word_accuracy;
  if (out.word_accuracy === undefined && out.cwr !== undefined) out.word_accuracy = out.cwr;
  // A multi-output model's per-output metrics (evaluate: `outputs.<name>.<metric>`) as `<metric>@<name>`.
  const outputs = (v as Record<string, unknown>).outputs;
  if (isRecord(outputs)) {
    for (const [o, mm] of Object.entries(outputs)) {
      if (!isRecord(mm)) continue;
      for (const k of OUTPUT_METRICS) if (typeof mm[k] === "number") out[`${k}@${o}`] = mm[k] as number;
    }
  }
  const missing = ["ccr", "cwr", "one_minus_ned", "mean_confidence", "mean_label_length", "count"].filter((k) =>
    out[k] === undefined
  );
  if (missing.length) warnings.push(`${where}: missing ${missing.join(", ")}`);
  return out;
}

/** Parses an evaluate stage's metrics (`path` is the `metrics` directory holding metrics.json, or the file). */
export async function readMetrics(path: string): Promise<ParsedMetrics> {
  let file = path;
  try {
    if ((await Deno.stat(path)).isDirectory) file = join(path, "metrics.json");
  } catch {
    // reported by the read below
  }
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    throw new Error(`${file}: cannot read metrics: ${e instanceof Error ? e.message : e}`);
  }
  if (!isRecord(json)) throw new Error(`${file}: metrics must be a JSON object`);
  return parseMetrics(json, "metrics.json");
}

/** Parses metrics.json content; `file` names it in warnings. */
export function parseMetrics(json: unknown, file: string): ParsedMetrics {
  if (!isRecord(json)) throw new Error(`${file}: metrics must be a JSON object`);
  const warnings: string[] = [];
  const model = isRecord(json.model) ? json.model : {};
  if (!isRecord(json.model)) warnings.push(`${file}: no "model" section (family, params, matrix)`);
  const datasets: Record<string, Record<string, number>> = {};
  if (Array.isArray(json.datasets)) {
    // The evaluate stage's shape: a list of {name, stage, samples, word_accuracy, …}.
    json.datasets.forEach((m, i) => {
      const name = isRecord(m) && typeof m.name === "string" ? m.name : `dataset_${i + 1}`;
      if (!isRecord(m) || typeof m.name !== "string") warnings.push(`${file}: datasets[${i}] has no "name"`);
      datasets[name] = numericFields(m, `${file}: datasets.${name}`, warnings);
      // Samples the evaluation could not score (e.g. labels longer than the model's max_length): said in the report.
      const ns = isRecord(m) && isRecord(m.not_scored) ? Object.entries(m.not_scored) : [];
      const n = ns.reduce((a, [, v]) => a + (typeof v === "number" ? v : 0), 0);
      if (n) {
        warnings.push(`${name}: ${n} samples not scored (${ns.map(([k, v]) => `${k}: ${v}`).join(", ")})`);
      }
    });
  } else if (isRecord(json.datasets)) {
    for (const [name, m] of Object.entries(json.datasets)) {
      datasets[name] = numericFields(m, `${file}: datasets.${name}`, warnings);
    }
  } else {
    warnings.push(`${file}: no "datasets" section`);
  }
  const combined = json.combined === undefined
    ? undefined
    : numericFields(json.combined, `${file}: combined`, warnings);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) if (!["model", "datasets", "combined"].includes(k)) extra[k] = v;
  const matrix: Record<string, Scalar> = {};
  if (isRecord(model.matrix)) {
    for (const [k, v] of Object.entries(model.matrix)) {
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") matrix[k] = v;
    }
  }
  return {
    family: typeof model.family === "string" ? model.family : undefined,
    trainParams: isRecord(model.params) ? model.params : {},
    modelConfig: isRecord(model.config) ? model.config : undefined,
    parameters: typeof model.parameters === "number" ? model.parameters : undefined,
    step: typeof model.step === "number" ? model.step : undefined,
    matrix,
    datasets,
    combined,
    extra,
    warnings,
  };
}

export interface CurvePoint {
  readonly step: number;
  readonly loss?: number;
  readonly lr?: number;
  readonly samples_per_s?: number;
  readonly parts?: Record<string, number>;
  readonly val?: Record<string, number>;
  readonly elapsed_s?: number;
}

/** Parses a training curve (JSONL, one object per line with at least `step`). Bad lines become warnings. */
export function parseCurve(text: string, file: string): { points: CurvePoint[]; warnings: string[] } {
  const points: CurvePoint[] = [];
  const warnings: string[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      // A last line cut short by a killed run is expected; anything else is worth a warning too.
      warnings.push(`${file}:${i + 1}: not JSON, skipped`);
      return;
    }
    if (!isRecord(v) || typeof v.step !== "number") {
      warnings.push(`${file}:${i + 1}: no numeric "step", skipped`);
      return;
    }
    const num = (x: unknown) => typeof x === "number" && Number.isFinite(x) ? x : undefined;
    const nums = (x: unknown) =>
      isRecord(x)
        ? Object.fromEntries(Object.entries(x).filter(([, y]) => typeof y === "number")) as Record<string, number>
        : undefined;
    points.push({
      step: v.step,
      loss: num(v.loss),
      lr: num(v.lr),
      samples_per_s: num(v.samples_per_s),
      parts: nums(v.parts ?? v.loss_parts),
      val: nums(v.val),
      elapsed_s: num(v.elapsed_s) ?? num(v.time_s),
    });
  });
  points.sort((a, b) => a.step - b.step);
  return { points, warnings };
}

// ---------------------------------------------------------------------------
// Report data (report.json)

export interface MetricSummary {
  readonly mean: number | null;
  readonly std: number | null;
  readonly n: number;
  readonly values: readonly number[];
}

export interface RunInfo {
  readonly stage_id: string;
  readonly seed: Scalar | null;
  readonly metrics_digest: string;
  readonly curve_stage_id?: string;
  readonly curve_digest?: string;
  readonly family?: string;
  /** Parameter count of the model. */
  readonly parameters?: number;
  /** From the curve: last step, final loss, mean samples/s, training seconds when recorded. */
  readonly steps?: number;
  readonly final_loss?: number;
  readonly samples_per_s?: number;
  readonly train_seconds?: number;
  /** Extra top-level fields of metrics.json (environment, backend, timings…). */
  readonly evaluate_info?: Record<string, unknown>;
}

export interface GroupData {
  /** Matrix values except the seed axis, as `k=v,k=v` (empty when there is no such axis). */
  readonly id: string;
  readonly label: string;
  readonly matrix: Record<string, Scalar>;
  readonly seeds: Scalar[];
  readonly n: number;
  readonly runs: RunInfo[];
  /** Params equal across the group's runs. */
  readonly params: Record<string, unknown>;
  /** Params whose value differs between the group's runs (e.g. the seed), values in run order. */
  readonly params_varying: Record<string, unknown[]>;
  /** data set (and `combined`) → metric → summary over the runs. */
  readonly metrics: Record<string, Record<string, MetricSummary>>;
}

export interface DatasetInfo {
  readonly name: string;
  readonly label: string;
  /** Sample count (the most common one when runs disagree). */
  readonly count: number | null;
  readonly counts_differ: boolean;
  /** How many runs evaluated it. */
  readonly runs: number;
}

export interface ReportData {
  readonly format: typeof REPORT_FORMAT;
  readonly experiment: string;
  readonly stage_id: string;
  readonly title: string;
  readonly description: string;
  readonly note: string;
  readonly seed_axis: string;
  readonly group_axes: string[];
  readonly headline: {
    rows: string;
    columns: string[];
    metrics: string[];
    layout: "wide" | "long";
    combined: boolean;
    /** An `average` column: the unweighted mean over the headline's data sets (MindOCR's "Average"). */
    average?: boolean;
  };
  readonly display_names: Record<string, string>;
  readonly datasets: DatasetInfo[];
  readonly groups: GroupData[];
  /** Param keys whose value differs between groups (the rest is in `shared_params`). */
  readonly differing_params: string[];
  readonly shared_params: Record<string, unknown>;
  readonly provenance: Record<string, unknown>;
  readonly warnings: string[];
  /** Treatment − baseline per data set with 95 % intervals (report/compare.ts), when asked for. */
  readonly comparisons?: Comparison[];
}

export interface BuildOptions {
  readonly experiment: string;
  readonly stageId: string;
  readonly title?: string;
  readonly description?: string;
  readonly note?: string;
  readonly seedAxis: string;
  /**
   * Matrix axis that splits one model's evaluation into one stage instance per data set (default `dataset`):
   * runs that differ only in it are merged into one run holding all their data sets.
   */
  readonly datasetAxis?: string;
  readonly rows: string;
  readonly columns?: readonly string[];
  readonly metrics: readonly string[];
  readonly layout?: "wide" | "long";
  readonly combined?: boolean;
  readonly average?: boolean;
  readonly displayNames?: Readonly<Record<string, string>>;
  readonly provenance?: Record<string, unknown>;
}

/** Flattens nested params to dotted keys (`optimizer.lr`); lists stay values. */
export function flatten(value: Readonly<Record<string, unknown>>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isRecord(v) && Object.keys(v).length) Object.assign(out, flatten(v, key));
    else out[key] = v;
  }
  return out;
}

/** Canonical JSON (sorted keys), for comparing values. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isRecord(v)) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

export function groupId(matrix: Readonly<Record<string, Scalar>>, seedAxis: string): string {
  return Object.keys(matrix).filter((k) => k !== seedAxis).sort().map((k) => `${k}=${matrix[k]}`).join(",");
}

function sameMatrix(a: Readonly<Record<string, Scalar>>, b: Readonly<Record<string, Scalar>>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function compareScalar(a: Scalar | null, b: Scalar | null): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

export function displayName(names: Readonly<Record<string, string>>, value: Scalar): string {
  return names[String(value)] ?? String(value);
}

interface LoadedRun {
  input: RunInput;
  metrics: ParsedMetrics;
  matrix: Record<string, Scalar>;
  curve?: { input: RunInput; points: CurvePoint[] };
}

export interface CurveRun {
  readonly groupId: string;
  readonly groupLabel: string;
  readonly seed: Scalar | null;
  readonly stageId: string;
  readonly points: CurvePoint[];
  /** The train stage's batch size, when known: the charts then plot against samples seen (step × batch). */
  readonly batchSize?: number;
}

function batchSizeOf(params: Readonly<Record<string, unknown>>): number | undefined {
  const b = params.batch_size;
  return typeof b === "number" && b > 0 ? b : undefined;
}

/** Loads inputs and builds the report data, plus the curves for the charts. */
export async function buildReport(
  metricsInputs: readonly RunInput[],
  curveInputs: readonly RunInput[],
  opts: BuildOptions,
): Promise<{ data: ReportData; curves: CurveRun[] }> {
  const warnings: string[] = [];
  const names = { ...DEFAULT_DISPLAY_NAMES, ...(opts.displayNames ?? {}) };
  const runs: LoadedRun[] = [];
  for (const input of metricsInputs) {
    const metrics = await readMetrics(input.path);
    warnings.push(...metrics.warnings.map((w) => `${input.stageId}: ${w}`));
    // The engine's matrix values are authoritative; metrics.json's are the fallback (e.g. a copied file).
    const matrix = Object.keys(input.matrix).length ? { ...input.matrix } : { ...metrics.matrix };
    runs.push({ input, metrics, matrix });
  }
  runs.splice(0, runs.length, ...mergeDatasetRuns(runs, opts.datasetAxis ?? "dataset", warnings));
  const curves: LoadedRun["curve"][] = [];
  for (const input of curveInputs) {
    let text: string;
    try {
      text = await Deno.readTextFile(input.path);
    } catch (e) {
      warnings.push(`${input.stageId}: cannot read curve ${input.path}: ${e instanceof Error ? e.message : e}`);
      continue;
    }
    const parsed = parseCurve(text, input.stageId);
    warnings.push(...parsed.warnings);
    const curve = { input, points: parsed.points };
    const run = runs.find((r) => !r.curve && sameMatrix(r.matrix, input.matrix));
    if (run) run.curve = curve;
    else curves.push(curve);
  }

  // Groups, in order of first appearance; runs inside a group by seed.
  const byGroup = new Map<string, LoadedRun[]>();
  for (const r of runs) {
    const id = groupId(r.matrix, opts.seedAxis);
    if (!byGroup.has(id)) byGroup.set(id, []);
    byGroup.get(id)!.push(r);
  }
  const groupAxes = [...new Set(runs.flatMap((r) => Object.keys(r.matrix)).filter((k) => k !== opts.seedAxis))];
  const seedOf = (m: Readonly<Record<string, Scalar>>) => m[opts.seedAxis] ?? null;
  const labelOf = (matrix: Readonly<Record<string, Scalar>>, family?: string) => {
    const main = matrix[opts.rows] ?? (opts.rows === "model" ? family : undefined);
    const rest = Object.keys(matrix).filter((k) => k !== opts.rows && k !== opts.seedAxis).sort();
    const head = main !== undefined ? displayName(names, main) : rest.length ? "" : "run";
    const tail = rest.map((k) => `${k}=${displayName(names, matrix[k])}`).join(", ");
    return head && tail ? `${head} (${tail})` : head || tail;
  };

  // Data sets in the requested order, else by first appearance.
  const seen: string[] = [];
  for (const r of runs) for (const d of Object.keys(r.metrics.datasets)) if (!seen.includes(d)) seen.push(d);
  let columns = opts.columns?.length ? [...opts.columns] : seen;
  const absent = columns.filter((c) => c !== "combined" && !seen.includes(c));
  if (absent.length) {
    warnings.push(`data sets ${absent.join(", ")} were asked for but no run evaluated them (left out)`);
    columns = columns.filter((c) => c === "combined" || seen.includes(c));
  }
  const detailDatasets = [...columns.filter((c) => c !== "combined"), ...seen.filter((d) => !columns.includes(d))];

  const groups: GroupData[] = [];
  for (const [id, members] of byGroup) {
    members.sort((a, b) => compareScalar(seedOf(a.matrix), seedOf(b.matrix)));
    const metrics: Record<string, Record<string, MetricSummary>> = {};
    const averageSets = columns.filter((c) => c !== "combined" && c !== "average");
    // Per run: the unweighted mean over the headline's data sets, of the metrics all of them have.
    const averageOf = (m: LoadedRun) => {
      const per = averageSets.map((d) => m.metrics.datasets[d]);
      if (per.length === 0 || per.some((x) => x === undefined)) return undefined;
      const keys = Object.keys(per[0]).filter((k) => per.every((x) => typeof x[k] === "number"));
      return Object.fromEntries(keys.map((k) => [k, per.reduce((a, x) => a + x[k], 0) / per.length]));
    };
    const keysFor = (d: string) =>
      d === "combined"
        ? members.map((m) => m.metrics.combined ?? {})
        : d === "average"
        ? members.map(averageOf)
        : members.map((m) => m.metrics.datasets[d]);
    for (const d of [...detailDatasets, "combined", ...(opts.average ? ["average"] : [])]) {
      const per = keysFor(d);
      if (per.every((x) => x === undefined || Object.keys(x).length === 0)) continue;
      const metricKeys = [...new Set(per.flatMap((x) => Object.keys(x ?? {})))];
      metrics[d] = {};
      for (const k of metricKeys) {
        const s: Summary = summarize(per.map((x) => x?.[k]));
        metrics[d][k] = {
          mean: s.n ? s.mean : null,
          std: s.n ? s.std : null,
          n: s.n,
          values: s.values,
        };
      }
    }
    // Params: train params (from the curve's producer, else metrics.json) + evaluate params.
    const perRunParams = members.map((m) => ({
      ...flatten(
        m.curve?.input.params && Object.keys(m.curve.input.params).length
          ? m.curve.input.params
          : m.metrics.trainParams,
      ),
      ...(m.metrics.modelConfig ? flatten(m.metrics.modelConfig, "model_config") : {}),
      ...flatten(m.input.params, "evaluate"),
    }));
    const keys = [...new Set(perRunParams.flatMap((p) => Object.keys(p)))].sort();
    const params: Record<string, unknown> = {};
    const varying: Record<string, unknown[]> = {};
    for (const k of keys) {
      const vals = perRunParams.map((p) => p[k]);
      if (vals.every((v) => canonical(v) === canonical(vals[0]))) params[k] = vals[0];
      else varying[k] = vals;
    }
    const matrix = Object.fromEntries(Object.entries(members[0].matrix).filter(([k]) => k !== opts.seedAxis));
    groups.push({
      id,
      label: labelOf(members[0].matrix, members[0].metrics.family),
      matrix,
      seeds: members.map((m) => seedOf(m.matrix)).filter((s): s is Scalar => s !== null),
      n: members.length,
      runs: members.map((m) => runInfo(m, seedOf(m.matrix))),
      params,
      params_varying: varying,
      metrics,
    });
  }

  // Params that differ between groups.
  const allKeys = [...new Set(groups.flatMap((g) => [...Object.keys(g.params), ...Object.keys(g.params_varying)]))]
    .sort();
  const differing: string[] = [];
  const shared: Record<string, unknown> = {};
  for (const k of allKeys) {
    const shown = groups.map((g) => canonical(k in g.params ? g.params[k] : g.params_varying[k] ?? null));
    if (shown.every((s) => s === shown[0])) {
      shared[k] = k in groups[0].params ? groups[0].params[k] : groups[0].params_varying[k];
    } else differing.push(k);
  }

  const datasets: DatasetInfo[] = detailDatasets.map((name) => {
    const counts = runs.map((r) => r.metrics.datasets[name]?.count).filter((c): c is number => c !== undefined);
    const freq = new Map<number, number>();
    for (const c of counts) freq.set(c, (freq.get(c) ?? 0) + 1);
    const common = [...freq.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    if (freq.size > 1) {
      warnings.push(`data set ${name}: runs evaluated different sample counts (${[...freq.keys()].join(", ")})`);
    }
    return {
      name,
      label: displayName(names, name),
      count: common ?? null,
      counts_differ: freq.size > 1,
      runs: runs.filter((r) => r.metrics.datasets[name]).length,
    };
  });

  const curveRuns: CurveRun[] = [];
  for (const g of groups) {
    for (const m of byGroup.get(g.id)!) {
      if (m.curve) {
        curveRuns.push({
          groupId: g.id,
          groupLabel: g.label,
          seed: seedOf(m.matrix),
          stageId: m.curve.input.stageId,
          points: m.curve.points,
          batchSize: batchSizeOf(m.curve.input.params),
        });
      }
    }
  }
  for (const c of curves) {
    if (!c) continue;
    const id = groupId(c.input.matrix, opts.seedAxis);
    curveRuns.push({
      groupId: id,
      groupLabel: labelOf(c.input.matrix),
      seed: seedOf(c.input.matrix),
      stageId: c.input.stageId,
      points: c.points,
      batchSize: batchSizeOf(c.input.params),
    });
  }

  const data: ReportData = {
    format: REPORT_FORMAT,
    experiment: opts.experiment,
    stage_id: opts.stageId,
    title: opts.title || opts.experiment,
    description: opts.description ?? "",
    note: opts.note ?? "",
    seed_axis: opts.seedAxis,
    group_axes: groupAxes,
    headline: {
      rows: opts.rows,
      columns,
      metrics: [...opts.metrics],
      layout: opts.layout ?? "wide",
      combined: opts.combined ?? false,
      average: opts.average ?? false,
    },
    display_names: names,
    datasets,
    groups,
    differing_params: differing,
    shared_params: shared,
    provenance: opts.provenance ?? {},
    warnings,
  };
  return { data, curves: curveRuns };
}

/** Per-sample means, weighted by the sample count when runs are merged. */
const MEAN_METRICS = ["word_accuracy", "cwr", "one_minus_ned", "mean_confidence", "mean_label_length"];

/** The size-weighted combination of per-data-set metrics (CCR from the character counts when present). */
export function combineDatasets(parts: readonly Record<string, number>[]): Record<string, number> {
  const n = parts.reduce((a, p) => a + (p.count ?? 0), 0);
  const out: Record<string, number> = { count: n, samples: n };
  if (n === 0) return out;
  for (const k of MEAN_METRICS) {
    if (parts.every((p) => p[k] !== undefined)) out[k] = parts.reduce((a, p) => a + p[k] * p.count, 0) / n;
  }
  for (const k of ["correct_words", "correct_chars", "total_chars"]) {
    if (parts.every((p) => p[k] !== undefined)) out[k] = parts.reduce((a, p) => a + p[k], 0);
  }
  if (out.total_chars) out.ccr = out.correct_chars / out.total_chars;
  else if (parts.every((p) => p.ccr !== undefined)) out.ccr = parts.reduce((a, p) => a + p.ccr * p.count, 0) / n;
  return out;
}

/**
 * Evaluation is cached per (model, data set) when the evaluate stage has a data-set axis: each instance then
 * scores one model on one data set. This merges the instances of one model (equal matrix but for `axis`) into
 * one run with all their data sets and a recomputed combined entry, so the rest of the report sees one run per
 * model as before. Runs without the axis pass through unchanged.
 */
function mergeDatasetRuns(runs: LoadedRun[], axis: string, warnings: string[]): LoadedRun[] {
  const out: LoadedRun[] = [];
  const byModel = new Map<string, LoadedRun[]>();
  for (const r of runs) {
    if (!(axis in r.matrix)) {
      out.push(r);
      continue;
    }
    const matrix = Object.fromEntries(Object.entries(r.matrix).filter(([k]) => k !== axis));
    const id = canonical(matrix);
    if (!byModel.has(id)) {
      const merged: LoadedRun = {
        input: { ...r.input, stageId: withoutAxis(r.input.stageId, axis) },
        metrics: { ...r.metrics, datasets: {}, warnings: [...r.metrics.warnings] },
        matrix,
      };
      byModel.set(id, [merged]);
      out.push(merged);
    }
    const group = byModel.get(id)!;
    group.push(r);
    const merged = group[0];
    for (const [name, m] of Object.entries(r.metrics.datasets)) {
      if (name in merged.metrics.datasets) {
        warnings.push(`${r.input.stageId}: data set ${name} was evaluated twice for one model; the first is kept`);
        continue;
      }
      merged.metrics.datasets[name] = m;
    }
  }
  for (const group of byModel.values()) {
    const [merged, ...parts] = group;
    const digests = parts.map((p) => p.input.digest).join("+");
    (merged as { input: RunInput }).input = { ...merged.input, digest: digests };
    (merged.metrics as { combined?: Record<string, number> }).combined = combineDatasets(
      Object.values(merged.metrics.datasets),
    );
  }
  return out;
}

/** `evaluate[dataset=iiit5k,model=a,seed=1]` → `evaluate[model=a,seed=1]`. */
function withoutAxis(stageId: string, axis: string): string {
  const m = stageId.match(/^([^[]*)\[(.*)\]$/);
  if (!m) return stageId;
  const rest = m[2].split(",").filter((kv) => !kv.startsWith(`${axis}=`));
  return rest.length ? `${m[1]}[${rest.join(",")}]` : m[1];
}

function runInfo(m: LoadedRun, seed: Scalar | null): RunInfo {
  const pts = m.curve?.points ?? [];
  const last = pts[pts.length - 1];
  const losses = pts.filter((p) => p.loss !== undefined);
  const speeds = pts.map((p) => p.samples_per_s).filter((x): x is number => x !== undefined);
  const elapsed = pts.map((p) => p.elapsed_s).filter((x): x is number => x !== undefined);
  return {
    stage_id: m.input.stageId,
    seed,
    metrics_digest: m.input.digest,
    ...(m.curve ? { curve_stage_id: m.curve.input.stageId, curve_digest: m.curve.input.digest } : {}),
    ...(m.metrics.family ? { family: m.metrics.family } : {}),
    ...(m.metrics.parameters !== undefined ? { parameters: m.metrics.parameters } : {}),
    ...(last ? { steps: last.step } : m.metrics.step !== undefined ? { steps: m.metrics.step } : {}),
    ...(losses.length ? { final_loss: losses[losses.length - 1].loss } : {}),
    ...(speeds.length ? { samples_per_s: speeds.reduce((a, b) => a + b, 0) / speeds.length } : {}),
    ...(elapsed.length ? { train_seconds: Math.max(...elapsed) } : {}),
    ...(Object.keys(m.metrics.extra).length ? { evaluate_info: m.metrics.extra } : {}),
  };
}
