/**
 * The `report` stage kind: turns the evaluate stages' metrics and the train
 * stages' curves into `README.md`, `report.json` and SVG charts (see
 * `report/`). Runs are grouped by their matrix values except the seed axis;
 * each metric is shown as mean ± std over the seeds of a group.
 */
import { array, boolean, integer, number, object, record, string } from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";

/** Metric names the headline accepts (see `report/model.ts` METRICS). */
const METRIC_NAMES = [
  "ccr",
  "cwr",
  "word_accuracy",
  "one_minus_ned",
  "mean_confidence",
  "mean_label_length",
  "count",
  "params_m",
  "gflops",
  "ms_per_image",
];

export const reportParams = object({
  title: string({ optional: true, description: "report title (default: the experiment name)" }),
  description: string({
    optional: true,
    description: "text under the title, e.g. the experiment's description",
  }),
  note: string({
    optional: true,
    description: 'shown under the headline table, e.g. "numbers from the small default setting"',
  }),
  headline: object({
    rows: string({ default: "model", description: "matrix axis whose values are the rows" }),
    columns: array(string(), {
      optional: true,
      description:
        "data sets in column order (default: all, in the order evaluated); `combined` for the size-weighted mean",
    }),
    metrics: array(
      string({
        pattern: new RegExp(`^(${METRIC_NAMES.join("|")})(@[a-z][a-z0-9_]*)?$`),
        description: "a metric, or metric@output for one output of a multi-output model (e.g. cwr@alignment_1)",
      }),
      { default: ["ccr", "cwr"], minItems: 1 },
    ),
    layout: string({
      enum: ["wide", "long"],
      default: "wide",
      description: "wide: one column per data set × metric; long: one row per model × data set",
    }),
    combined: boolean({ default: false, description: "add the combined (size-weighted) column" }),
    average: boolean({
      default: false,
      description: "add an Average column: the unweighted mean over the data-set columns (as MindOCR's README)",
    }),
  }),
  seed_axis: string({ default: "seed", description: "matrix axis averaged over (mean ± std)" }),
  dataset_axis: string({
    default: "dataset",
    description: "matrix axis of evaluate stages that score one data set each; their metrics are merged per model",
  }),
  display_names: record(string(), {
    default: {},
    description: "display names of matrix values and data sets (abinet_vision → ABINet-Vision is built in)",
  }),
  expected: record(record(number({ min: 0, max: 100 })), {
    default: {},
    description:
      "published word accuracies (%) shown beside the measured CWR: row value → data set (or `combined`) → value",
  }),
  figure_captions: record(string(), {
    default: {},
    description: "caption per figure, keyed by the producing stage id (default: the stage id)",
  }),
  digits: integer({ default: 3, min: 0, max: 8, description: "decimals of rates" }),
  percent: boolean({ default: false, description: "show rates as percentages" }),
  compare: object({
    axis: string({ default: "model", description: "matrix axis whose values are compared" }),
    baseline: string({ optional: true, description: "the reference value of `axis` (e.g. abinet_vision)" }),
    treatment: string({ optional: true, description: "the value compared against it (e.g. conclr_vision)" }),
    replicates: integer({ default: 2000, min: 100, description: "bootstrap replicates of the 95 % intervals" }),
    seed: integer({ default: 1, min: 0, description: "seed of the bootstrap draws" }),
  }, { description: "treatment − baseline per data set with 95 % intervals (needs the `predictions` input)" }),
  curves: object({
    smooth: integer({ default: 0, min: 0, description: "moving-average window of the loss (0: automatic)" }),
    val_metric: string({ default: "word_accuracy", description: "validation field plotted in val_accuracy.svg" }),
  }),
});

export type ReportParams = ReturnType<typeof reportParams.parse>;

export const VERSION = 1;

export default registerStageKind({
  kind: "report",
  version: VERSION,
  description:
    "Markdown report (README.md), report.json and SVG training curves from evaluate metrics and train curves",
  params: reportParams,
  inputs: {
    metrics: { description: "evaluate stages' `metrics` directories (metrics.json)", many: true },
    curves: { description: "train stages' `curve` files (JSONL)", many: true, optional: true },
    predictions: {
      description: "evaluate stages' per-sample `predictions` (JSONL), for the paired comparison (`compare`)",
      many: true,
      optional: true,
    },
    figures: {
      description: "PNG files shown in the report's Figures section (e.g. a conaug_montage stage's montage)",
      many: true,
      optional: true,
    },
    provenance: {
      description: "optional JSON with a `stages` map (id → key, seconds, environment), e.g. a lock file",
      optional: true,
    },
  },
  outputs: {
    report: { description: "README.md, report.json, loss.svg, val_accuracy.svg", type: "dir" },
  },
  module: import.meta.url,
  // report.json and the README title carry the experiment name and stage id.
  keyedByContext: true,
  environment: () => ({ deno: Deno.version.deno }),
  async run(ctx: StageContext<ReportParams>) {
    const { writeReport } = await import("../report/write.ts");
    return await writeReport(ctx, VERSION);
  },
});
