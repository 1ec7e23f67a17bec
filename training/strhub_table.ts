/**
 * The evaluation table as strhub's `test.py` prints it: one row per data set and a Combined row, with
 * `# samples`, Accuracy, 1 − NED and Confidence in percent (2 decimals) and the mean Label Length (2 decimals).
 * Combined pools the samples (strhub sums correct words, NED and confidence over all samples; strata's
 * `combineMetrics` weights each rate by the sample count, which is the same). Pure TypeScript.
 */
import type { TextMetrics } from "./metrics.ts";

export interface TableRow extends TextMetrics {
  name: string;
}

export interface FilteringRow {
  name: string;
  stored: number;
  usable: number;
  /** Drops by reason (empty, too_long, unsupported_char; bad_* for unreadable samples). */
  dropped: Record<string, number>;
  /** Kept labels changed by the protocol, by reason (case_folded, chars_removed, unicode_normalized). */
  changed: Record<string, number>;
}

const pct = (v: number) => (100 * v).toFixed(2);

/** Markdown table of `rows` and `combined` (strhub's columns). */
export function strhubTable(rows: readonly TableRow[], combined: TextMetrics): string {
  const line = (name: string, m: TextMetrics) =>
    `| ${name} | ${m.samples} | ${pct(m.word_accuracy)} | ${pct(m.one_minus_ned)} | ${pct(m.mean_confidence)} | ${
      m.mean_label_length.toFixed(2)
    } |`;
  return [
    "| Dataset | # samples | Accuracy | 1 - NED | Confidence | Label Length |",
    "|:--------|----------:|---------:|--------:|-----------:|-------------:|",
    ...rows.map((r) => line(r.name, r)),
    line("**Combined**", combined),
  ].join("\n");
}

/** Markdown table of the samples each data set kept and dropped under the protocol. */
export function filteringTable(rows: readonly FilteringRow[]): string {
  const cols = [
    ...[...new Set(rows.flatMap((r) => Object.keys(r.dropped)))].sort().map((k) => ["dropped", k] as const),
    ...[...new Set(rows.flatMap((r) => Object.keys(r.changed)))].sort().map((k) => ["changed", k] as const),
  ];
  const cells = (xs: (string | number)[]) => `| ${xs.join(" | ")} |`;
  return [
    cells(["Dataset", "stored", "used", ...cols.map(([what, k]) => `${what}: ${k}`)]),
    cells([":--", "--:", "--:", ...cols.map(() => "--:")]),
    ...rows.map((r) => cells([r.name, r.stored, r.usable, ...cols.map(([what, k]) => r[what][k] ?? 0)])),
  ].join("\n");
}

/**
 * Drop and change counts by reason from a loader summary's sources (`labels`: data/charset.ts `LabelCounts`,
 * `bad`: data/lmdb.ts `BadSamples`). Bad samples are prefixed `bad_`.
 */
export function filteringCounts(
  sources: readonly { labels: Record<string, unknown>; bad: Record<string, unknown> }[],
): { dropped: Record<string, number>; changed: Record<string, number> } {
  const dropped: Record<string, number> = {}, changed: Record<string, number> = {};
  const add = (into: Record<string, number>, rec: unknown, prefix = "") => {
    for (const [k, v] of Object.entries((rec ?? {}) as Record<string, unknown>)) {
      if (typeof v === "number" && v > 0) into[`${prefix}${k}`] = (into[`${prefix}${k}`] ?? 0) + v;
    }
  };
  for (const s of sources) {
    add(dropped, s.labels.dropped);
    add(changed, s.labels.changed);
    add(dropped, s.bad.counts, "bad_");
  }
  return { dropped, changed };
}
