import assert from "node:assert/strict";
import { parseTables, tableProblems } from "./markdown.ts";
import type { GroupData, MetricSummary, ReportData } from "./model.ts";
import { formatSummary, renderReadme } from "./readme.ts";

const opts = { digits: 3, percent: false };
const sum = (values: number[]): MetricSummary => {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = values.length > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, std, n: values.length, values };
};

Deno.test("formatSummary: std only when n > 1, percent, counts, missing", () => {
  assert.equal(formatSummary("cwr", sum([0.5, 0.6]), opts), "0.550 ± 0.071");
  assert.equal(formatSummary("cwr", sum([0.5]), opts), "0.500");
  assert.equal(formatSummary("cwr", sum([0.5, 0.6]), { digits: 3, percent: true }), "55.0 ± 7.1");
  assert.equal(formatSummary("count", sum([300, 300]), opts), "300");
  assert.equal(formatSummary("mean_label_length", sum([5, 6]), opts), "5.50 ± 0.71");
  assert.equal(formatSummary("cwr", undefined, opts), "—");
  assert.equal(formatSummary("cwr", { mean: null, std: null, n: 0, values: [] }, opts), "—");
});

function group(id: string, label: string, cwr: number[], extra: Partial<GroupData> = {}): GroupData {
  return {
    id,
    label,
    matrix: { model: id },
    seeds: cwr.map((_, i) => i + 1),
    n: cwr.length,
    runs: [],
    params: {},
    params_varying: {},
    metrics: { iiit5k: { cwr: sum(cwr), ccr: sum(cwr.map((x) => x + 0.1)) } },
    ...extra,
  };
}

function data(groups: GroupData[]): ReportData {
  return {
    format: "strata-report/1",
    experiment: "x",
    stage_id: "report",
    title: "T | with a pipe",
    description: "",
    note: "",
    seed_axis: "seed",
    group_axes: ["model"],
    headline: { rows: "model", columns: ["iiit5k"], metrics: ["ccr", "cwr"], layout: "wide", combined: false },
    display_names: { iiit5k: "IIIT5k" },
    datasets: [{ name: "iiit5k", label: "IIIT5k", count: 10, counts_differ: false, runs: groups.length }],
    groups,
    differing_params: [],
    shared_params: {},
    provenance: {},
    warnings: [],
  };
}

Deno.test("headline: ties are all bold, equal columns are not, a single row is never bold", () => {
  const md = renderReadme(data([group("a", "A", [0.5, 0.6]), group("b", "B", [0.55, 0.55]), group("c", "C", [0.1])]), {
    ...opts,
    charts: [],
  });
  assert.deepEqual(tableProblems(md), []);
  const [head] = parseTables(md);
  assert.deepEqual(head.header, ["Model", "IIIT5k CCR", "IIIT5k CWR", "n"]); // n differs per row → a column
  assert.deepEqual(head.rows.map((r) => r[2]), ["**0.550 ± 0.071**", "**0.550 ± 0.000**", "0.100"]);
  assert.match(md, /^# T \\\| with a pipe$/m);

  const single = parseTables(renderReadme(data([group("a", "A", [0.5])]), { ...opts, charts: [] }))[0];
  assert.deepEqual(single.rows[0], ["A", "0.600", "0.500"]);
  const same =
    parseTables(renderReadme(data([group("a", "A", [0.5]), group("b", "B", [0.5])]), { ...opts, charts: [] }))[0];
  assert.ok(same.rows.every((r) => !r.join("").includes("**")));
});

Deno.test("README without metrics still renders valid sections", () => {
  const d = { ...data([]), datasets: [] };
  const md = renderReadme(d, { ...opts, charts: [] });
  assert.deepEqual(tableProblems(md), []);
  assert.match(md, /No metrics were given/);
  assert.match(md, /No data set was evaluated/);
});

Deno.test("published vs measured: README numbers beside the measured CWR, — when not evaluated", () => {
  const md = renderReadme(data([group("a", "A", [0.95])]), {
    ...opts,
    charts: [],
    expected: { a: { iiit5k: 96.4, svt: 93.4 }, b: { iiit5k: 99 } },
  });
  assert.deepEqual(tableProblems(md), []);
  const t = parseTables(md).find((t) => t.header.includes("Published CWR %"))!;
  assert.deepEqual(t.rows, [
    ["a", "IIIT5k", "96.40", "95.00", "-1.40"],
    ["a", "svt", "93.40", "—", "—"],
    ["b", "IIIT5k", "99.00", "—", "—"],
  ]);
});
