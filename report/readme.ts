/**
 * The report's README.md, rendered from the report data: title and
 * description, the headline table, per-data-set tables, the params that
 * differ, the data summary, the training curves and the provenance.
 */
import {
  type Align,
  bold,
  bullets,
  code,
  details,
  escapeText,
  heading,
  image,
  type Inline,
  italic,
  raw,
  table,
} from "./markdown.ts";
import { displayName, type GroupData, metricInfo, type MetricSummary, type ReportData } from "./model.ts";
import type { ChartFile } from "./curves.ts";
import { oneSeedEach, verdictSentence } from "./compare.ts";

export interface ReadmeOptions {
  /** Decimals for rates (CCR, CWR…). */
  readonly digits: number;
  /** Show rates as percentages. */
  readonly percent: boolean;
  readonly charts: readonly ChartFile[];
  /** Published word accuracies (%): row value → data set (or `combined`) → value. */
  readonly expected?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Extra pictures (report `figures` input), copied into the report folder. */
  readonly figures?: readonly { file: string; title: string; caption: string }[];
}

/** Published numbers (e.g. a README's table) beside the measured CWR of the same row and data set. */
function expectedSection(data: ReportData, expected: NonNullable<ReadmeOptions["expected"]>): string {
  const rows: Inline[][] = [];
  for (const [key, sets] of Object.entries(expected)) {
    const g = data.groups.find((g) => String(g.matrix[data.headline.rows]) === key || g.label === key);
    for (const [set, published] of Object.entries(sets)) {
      const mean = g?.metrics[set]?.cwr?.mean;
      const measured = typeof mean === "number" ? mean * 100 : undefined;
      rows.push([
        displayName(data.display_names, key),
        set === "combined" ? "combined" : displayName(data.display_names, set),
        published.toFixed(2),
        measured === undefined ? DASH : measured.toFixed(2),
        measured === undefined ? DASH : `${measured - published >= 0 ? "+" : ""}${(measured - published).toFixed(2)}`,
      ]);
    }
  }
  return [
    heading(2, "Published vs measured"),
    table(["Model", "Data set", "Published CWR %", "Measured CWR %", "Δ"], rows, [
      "left",
      "left",
      "right",
      "right",
      "right",
    ]),
    "Published: the numbers the authors report for these weights; measured: this run. — : not evaluated here.",
  ].join("\n\n");
}

const DASH = "—";

function metricLabel(m: string): string {
  return metricInfo(m)?.label ?? m;
}

function isRate(m: string): boolean {
  return metricInfo(m)?.digits === undefined;
}

/** Formats one number of metric `m`. */
export function formatNumber(m: string, v: number, opts: Pick<ReadmeOptions, "digits" | "percent">): string {
  if (!isRate(m)) return v.toFixed(metricInfo(m)!.digits!);
  return opts.percent ? (v * 100).toFixed(Math.max(0, opts.digits - 2)) : v.toFixed(opts.digits);
}

/** `mean ± std` (std only when n > 1), or a dash when there is no value. */
export function formatSummary(
  m: string,
  s: MetricSummary | undefined,
  opts: Pick<ReadmeOptions, "digits" | "percent">,
): string {
  if (!s || s.mean === null) return DASH;
  const mean = formatNumber(m, s.mean, opts);
  if (s.n <= 1 || s.std === null) return mean;
  if (m === "count" && s.std === 0) return mean;
  return `${mean} ± ${formatNumber(m, s.std, opts)}`;
}

/**
 * Cells of one column with the best (displayed) mean in bold; ties are all
 * bold; nothing is bold when fewer than two rows have a value or the metric
 * has no better direction.
 */
function columnCells(m: string, summaries: (MetricSummary | undefined)[], opts: ReadmeOptions): Inline[] {
  const text = summaries.map((s) => formatSummary(m, s, opts));
  const better = metricInfo(m)?.better ?? null;
  const shown = summaries.map((s) => s && s.mean !== null ? Number(formatNumber(m, s.mean, opts)) : undefined);
  const present = shown.filter((x): x is number => x !== undefined);
  if (!better || present.length < 2) return text;
  const best = better === "higher" ? Math.max(...present) : Math.min(...present);
  if (present.every((x) => x === best)) return text;
  return text.map((t, i) => shown[i] === best ? bold(t) : t);
}

function seedsSentence(data: ReportData): string {
  const ns = [...new Set(data.groups.map((g) => g.n))];
  const axis = data.seed_axis;
  if (data.groups.every((g) => g.n <= 1)) return `One run per row (no \`${axis}\` repeats), so no std is shown.`;
  if (ns.length === 1) {
    const seeds = data.groups[0].seeds.join(", ");
    return `Mean ± sample std over n = ${ns[0]} runs per row (\`${axis}\` = ${seeds}).`;
  }
  return `Mean ± sample std over the runs of each row (n per row: ${
    data.groups.map((g) => `${g.label} ${g.n}`).join(", ")
  }).`;
}

function headline(data: ReportData, opts: ReadmeOptions): string {
  const cols = [
    ...data.headline.columns,
    ...(data.headline.combined && !data.headline.columns.includes("combined") ? ["combined"] : []),
    ...(data.headline.average ? ["average"] : []),
  ];
  const metrics = data.headline.metrics;
  const rowHead = displayName({ model: "Model", ...data.display_names }, data.headline.rows);
  const ns = new Set(data.groups.map((g) => g.n));
  const nColumn = ns.size > 1;
  if (data.groups.length === 0 || cols.length === 0) return italic("No metrics were given to this report.").md;

  if (data.headline.layout === "long") {
    const header: Inline[] = [rowHead, "Data set", ...metrics.map(metricLabel), ...(nColumn ? ["n"] : [])];
    const rows: Inline[][] = [];
    const perDataset = cols.map((d) =>
      metrics.map((m) => columnCells(m, data.groups.map((g) => g.metrics[d]?.[m]), opts))
    );
    data.groups.forEach((g, gi) => {
      cols.forEach((d, di) => {
        rows.push([
          di === 0 ? bold(g.label) : "",
          displayName(data.display_names, d),
          ...metrics.map((_, mi) => perDataset[di][mi][gi]),
          ...(nColumn ? [String(g.n)] : []),
        ]);
      });
    });
    return table(header, rows, [
      "left",
      "left",
      ...metrics.map((): Align => "right"),
      ...(nColumn ? ["right" as const] : []),
    ]);
  }

  const header: Inline[] = [
    rowHead,
    ...cols.flatMap((d) => metrics.map((m) => `${displayName(data.display_names, d)} ${metricLabel(m)}`)),
    ...(nColumn ? ["n"] : []),
  ];
  const columns = cols.flatMap((d) =>
    metrics.map((m) => columnCells(m, data.groups.map((g) => g.metrics[d]?.[m]), opts))
  );
  const rows = data.groups.map((g, gi) => [g.label, ...columns.map((c) => c[gi]), ...(nColumn ? [String(g.n)] : [])]);
  return table(header, rows, ["left", ...columns.map((): Align => "right"), ...(nColumn ? ["right" as const] : [])]);
}

const DETAIL_METRICS = [
  "word_accuracy",
  "one_minus_ned",
  "ccr",
  "cwr",
  "mean_confidence",
  "mean_label_length",
  "count",
];

function detailTable(data: ReportData, dataset: string, opts: ReadmeOptions): string {
  const groups = data.groups.filter((g) => g.metrics[dataset]);
  const header: Inline[] = [
    displayName({ model: "Model" }, data.headline.rows),
    "n",
    ...DETAIL_METRICS.map(metricLabel),
  ];
  const columns = DETAIL_METRICS.map((m) => columnCells(m, groups.map((g) => g.metrics[dataset]?.[m]), opts));
  const rows = groups.map((g, gi) => [g.label, String(g.n), ...columns.map((c) => c[gi])]);
  return table(header, rows, ["left", "right", ...DETAIL_METRICS.map((): Align => "right")]);
}

export function formatValue(v: unknown): string {
  if (v === undefined) return DASH;
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

function paramCell(g: GroupData, key: string): Inline {
  if (key in g.params) return code(formatValue(g.params[key]));
  if (key in g.params_varying) return raw(g.params_varying[key].map((v) => code(formatValue(v)).md).join(" / "));
  return DASH;
}

function paramsSection(data: ReportData): string {
  const out: string[] = [heading(2, "Params")];
  if (data.groups.length < 2) {
    out.push("One run group only, so there is nothing to compare; all params are listed below.");
  } else if (data.differing_params.length === 0) {
    out.push("The compared runs use identical params (apart from the matrix axes).");
  } else {
    out.push("Only the params that differ between the compared runs (values per run in seed order where they vary):");
    out.push(
      table(
        ["Param", ...data.groups.map((g) => g.label)],
        data.differing_params.map((k) => [code(k), ...data.groups.map((g) => paramCell(g, k))]),
      ),
    );
  }
  const shared = Object.keys(data.shared_params);
  if (shared.length) {
    const rows = shared.map((k) => {
      const v = data.shared_params[k];
      return [
        code(k),
        Array.isArray(v) && data.groups[0] && k in data.groups[0].params_varying
          ? raw(v.map((x) => code(formatValue(x)).md).join(" / "))
          : code(formatValue(v)),
      ] as Inline[];
    });
    out.push(details(`${shared.length} params shared by all runs`, table(["Param", "Value"], rows)));
  }
  return out.join("\n\n");
}

function dataSection(data: ReportData): string {
  const out = [heading(2, "Data")];
  if (!data.datasets.length) {
    out.push(italic("No data set was evaluated.").md);
    return out.join("\n\n");
  }
  const total = data.groups.reduce((a, g) => a + g.runs.length, 0);
  out.push(table(
    ["Data set", "Name", "Samples", "Evaluated by"],
    data.datasets.map((d) => [
      d.label,
      code(d.name),
      d.count === null ? DASH : `${d.count}${d.counts_differ ? " (runs differ)" : ""}`,
      `${d.runs} of ${total} runs`,
    ]),
    ["left", "left", "right", "right"],
  ));
  return out.join("\n\n");
}

function signed(v: number, opts: ReadmeOptions): string {
  const s = formatNumber("cwr", Math.abs(v), opts);
  if (Number(s.replace(/[^0-9.]/g, "")) === 0) return s; // no sign on what rounds to zero
  return `${v < 0 ? "−" : "+"}${s}`;
}

function interval(ci: { low: number; high: number }, opts: ReadmeOptions): string {
  return `[${signed(ci.low, opts)}, ${signed(ci.high, opts)}]`;
}

/** Treatment − baseline per data set with both intervals and the plain sentence. */
function comparisonSection(data: ReportData, opts: ReadmeOptions): string {
  const cs = data.comparisons ?? [];
  const name = (v: string) => displayName(data.display_names, v);
  const t = name(cs[0].treatment), b = name(cs[0].baseline);
  const out = [heading(2, `${t} − ${b}`)];
  out.push(
    bullets(
      cs.map((c) =>
        `${bold(name(c.dataset)).md}: ${verdictSentence(c, name)} (CWR ${signed(c.cwr.diff, opts)}, 95 % CI ${
          interval(c.cwr.ci, opts)
        }).`
      ).map((x) => raw(x)),
    ),
  );
  out.push(table(
    [
      "Data set",
      "Samples",
      `CWR ${b}`,
      `CWR ${t}`,
      "Δ CWR",
      "95 % CI (seeds + samples)",
      "95 % CI (samples)",
      "Δ CCR",
      "95 % CI (seeds + samples)",
      "95 % CI (samples)",
    ],
    cs.map((c) => [
      name(c.dataset),
      String(c.samples),
      formatNumber("cwr", c.cwr.baseline, opts),
      formatNumber("cwr", c.cwr.treatment, opts),
      signed(c.cwr.diff, opts),
      interval(c.cwr.ci, opts),
      interval(c.cwr.ci_samples, opts),
      signed(c.ccr.diff, opts),
      interval(c.ccr.ci, opts),
      interval(c.ccr.ci_samples, opts),
    ]),
    ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right"],
  ));
  const seeds = `${cs[0].seeds.treatment} + ${cs[0].seeds.baseline}`;
  out.push(escapeText(
    `Differences of the seed means (${seeds} seeds). "Seeds + samples": a two-level bootstrap that redraws each ` +
      `family's seeds and, paired, the test images (the same images for both families) — the uncertainty of ` +
      `the method comparison; the verdict uses it (better / worse when the CWR interval excludes 0). ` +
      `"Samples": the paired bootstrap over test images with every seed kept — the uncertainty of these trained ` +
      `models' difference on the data set. Percentile intervals; with few seeds the seed part is coarse` +
      (oneSeedEach(cs[0])
        ? `, and with one seed per family it is absent: both intervals then cover the test images only, so a ` +
          `verdict compares these two trained models, not the methods (train more seeds for that).`
        : "."),
  ));
  return out.join("\n\n");
}

function curvesSection(opts: ReadmeOptions): string {
  const out = [heading(2, "Training curves")];
  if (!opts.charts.length) {
    out.push(italic("No training curves were given to this report.").md);
    return out.join("\n\n");
  }
  for (const c of opts.charts) out.push(`${image(c.title, c.file).md}\n\n${c.caption}`);
  return out.join("\n\n");
}

function num(v: unknown, digits: number): string {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : DASH;
}

function short(digest: string | undefined): Inline {
  if (!digest) return DASH;
  return code(digest.replace(/^sha256:/, "").slice(0, 12));
}

/** Picks a readable backend/version summary from metrics.json's extra fields. */
function environmentOf(info: Record<string, unknown> | undefined): string {
  if (!info) return DASH;
  const env = (info.environment ?? info.provenance ?? {}) as Record<string, unknown>;
  const pick = (k: string) => info[k] ?? (typeof env === "object" && env ? env[k] : undefined);
  const parts = ["backend", "tfjs", "deno"].map((k) => pick(k) !== undefined ? `${k} ${formatValue(pick(k))}` : "")
    .filter(Boolean);
  return parts.length ? parts.join(", ") : DASH;
}

function provenanceSection(data: ReportData): string {
  const out = [heading(2, "Provenance")];
  const rows: Inline[][] = [];
  for (const g of data.groups) {
    for (const r of g.runs) {
      rows.push([
        code(r.stage_id),
        short(r.metrics_digest),
        r.curve_stage_id ? code(r.curve_stage_id) : DASH,
        short(r.curve_digest),
        r.parameters !== undefined ? r.parameters.toLocaleString("en-US") : DASH,
        r.steps !== undefined ? String(r.steps) : DASH,
        num(r.final_loss, 4),
        num(r.samples_per_s, 1),
        num(r.train_seconds, 0),
        environmentOf(r.evaluate_info),
      ]);
    }
  }
  if (rows.length) {
    out.push(table(
      [
        "Evaluate stage",
        "Metrics digest",
        "Train stage",
        "Curve digest",
        "Weights",
        "Steps",
        "Final loss",
        "Samples/s",
        "Train s",
        "Environment",
      ],
      rows,
      ["left", "left", "left", "left", "right", "right", "right", "right", "right", "left"],
    ));
  }
  const p = data.provenance;
  const items: Inline[] = [
    raw(`Experiment ${code(data.experiment).md}, report stage ${code(data.stage_id).md}.`),
  ];
  if (typeof p.generator === "string") items.push(raw(`Generated by ${code(p.generator).md}.`));
  const stages = p.stages as Record<string, Record<string, unknown>> | undefined;
  if (stages && typeof stages === "object" && Object.keys(stages).length) {
    out.push(table(
      ["Stage", "Key", "Seconds", "Environment"],
      Object.entries(stages).map(([id, s]) => [
        code(id),
        short(typeof s.key === "string" ? s.key : undefined),
        num(s.seconds, 1),
        s.environment && typeof s.environment === "object"
          ? Object.entries(s.environment as Record<string, unknown>).map(([k, v]) => `${k} ${formatValue(v)}`).join(
            ", ",
          )
          : DASH,
      ]),
      ["left", "left", "right", "left"],
    ));
  }
  items.push(
    raw(
      `Stage keys, output digests, timings and environments of every stage are in ${
        code("strata.lock").md
      } beside this file once the engine publishes it; ${code("report.json").md} holds this report's data.`,
    ),
  );
  out.push(bullets(items));
  return out.join("\n\n");
}

export function renderReadme(data: ReportData, opts: ReadmeOptions): string {
  const parts: string[] = [heading(1, data.title)];
  if (data.description) parts.push(escapeText(data.description));

  parts.push(heading(2, "Results"));
  parts.push(headline(data, opts));
  const notes = [
    seedsSentence(data),
    data.groups.length > 1 ? "Best value per column in **bold**." : "",
    data.headline.metrics.some((m) => m === "ccr" || m === "cwr")
      ? "CCR: correct character rate, CWR: correct word rate (as ABINet's evaluation defines them)."
      : "",
  ].filter(Boolean);
  parts.push(notes.join(" "));
  if (data.note) parts.push(`> ${escapeText(data.note).replace(/<br>/g, "<br>\n> ")}`);
  if (opts.expected && Object.keys(opts.expected).length) parts.push(expectedSection(data, opts.expected));

  if (data.comparisons?.length) parts.push(comparisonSection(data, opts));

  parts.push(heading(2, "Per data set"));
  const detailSets = [...data.datasets.map((d) => d.name), "combined"].filter((d) =>
    data.groups.some((g) => g.metrics[d])
  );
  if (!detailSets.length) parts.push(italic("No per-data-set metrics.").md);
  for (const d of detailSets) {
    const info = data.datasets.find((x) => x.name === d);
    const title = d === "combined"
      ? "Combined (weighted by data set size)"
      : `${displayName(data.display_names, d)}${
        info?.count !== null && info?.count !== undefined ? ` (${info.count} samples)` : ""
      }`;
    parts.push(heading(3, title));
    parts.push(detailTable(data, d, opts));
  }

  parts.push(paramsSection(data));
  parts.push(dataSection(data));
  parts.push(curvesSection(opts));
  if (opts.figures?.length) {
    parts.push(heading(2, "Figures"));
    for (const f of opts.figures) parts.push(`${image(f.title, f.file).md}\n\n${escapeText(f.caption)}`);
  }
  parts.push(provenanceSection(data));

  if (data.warnings.length) {
    parts.push(heading(2, "Warnings"));
    parts.push(bullets(data.warnings));
  }
  return parts.join("\n\n") + "\n";
}
