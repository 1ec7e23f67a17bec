/**
 * Differences between two reports (and optionally their provenance locks):
 * the params that differ per run group, every compared metric with old, new,
 * delta and whether it got better or worse, and gates for CI
 * (`--fail-if-worse iiit5k.cwr=0.01`).
 */
import { bold, bullets, code, heading, type Inline, italic, raw, table } from "./markdown.ts";
import { canonical, displayName, flatten, METRICS, type MetricSummary, type ReportData } from "./model.ts";
import { formatSummary, formatValue } from "./readme.ts";

export interface Side {
  /** What the user named (path, `git:REV:path`…). */
  readonly source: string;
  readonly report?: ReportData;
  /** A provenance lock (`pipeline/provenance.ts` LockFile), when one was found. */
  readonly lock?: LockLike;
}

export interface LockLike {
  readonly experiment?: string;
  readonly stages: Record<string, { key?: string; components?: { params?: Record<string, unknown> }; kind?: string }>;
}

export type Change = "better" | "worse" | "same" | "changed" | "added" | "removed";

export interface MetricDelta {
  readonly group: string;
  readonly group_label: string;
  readonly dataset: string;
  readonly metric: string;
  readonly old: MetricSummary | null;
  readonly new: MetricSummary | null;
  /** new − old of the means (null when one side lacks it). */
  readonly delta: number | null;
  readonly change: Change;
  /** |delta| is below the larger of the two stds (both sides with n > 1). */
  readonly within_std: boolean;
}

export interface ParamDelta {
  /** Group id, or `*` when the change is the same for every group present on both sides. */
  readonly group: string;
  readonly group_label: string;
  readonly key: string;
  readonly old: unknown;
  readonly new: unknown;
}

export interface StageDelta {
  readonly stage: string;
  readonly old_key: string | null;
  readonly new_key: string | null;
  readonly params: { key: string; old: unknown; new: unknown }[];
}

export interface GateRule {
  readonly text: string;
  readonly group: RegExp;
  readonly dataset: RegExp;
  readonly metric: RegExp;
  readonly threshold: number;
}

export interface GateFailure {
  readonly rule: string;
  readonly delta: MetricDelta;
  /** How much it got worse (positive), or Infinity when the metric disappeared. */
  readonly drop: number;
}

export interface ReportDiff {
  readonly a: { source: string; experiment?: string };
  readonly b: { source: string; experiment?: string };
  readonly params: ParamDelta[];
  readonly metrics: MetricDelta[];
  readonly groups_only_in_a: string[];
  readonly groups_only_in_b: string[];
  readonly stages: StageDelta[];
  readonly gate: { rules: string[]; failures: GateFailure[]; unmatched: string[] };
  readonly digits: number;
  /** Display names of data sets and matrix values (from both reports). */
  readonly display_names: Record<string, string>;
}

export interface DiffOptions {
  /** Metrics to compare (default: the headline metrics of either report). */
  readonly metrics?: readonly string[];
  readonly rules?: readonly GateRule[];
  readonly digits?: number;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${body}$`);
}

/**
 * Parses `[GROUP/][DATASET.]METRIC=THRESHOLD`, e.g. `iiit5k.cwr=0.01`,
 * `*.cwr=0.02`, `cwr=0.01` (any data set), `model=conclr_vision/svt.ccr=0`.
 * `*` matches anything; GROUP matches a group id (`model=conclr_vision`), its label or one of its matrix values.
 */
export function parseRule(text: string): GateRule {
  const eq = text.lastIndexOf("=");
  const thresholdText = eq >= 0 ? text.slice(eq + 1).trim() : "";
  const threshold = Number(thresholdText);
  if (eq <= 0 || thresholdText === "" || !Number.isFinite(threshold) || threshold < 0) {
    throw new Error(`--fail-if-worse ${text}: expected METRIC=THRESHOLD with a threshold ≥ 0, e.g. iiit5k.cwr=0.01`);
  }
  const pattern = text.slice(0, eq).trim();
  const slash = pattern.lastIndexOf("/");
  const group = slash >= 0 ? pattern.slice(0, slash) : "*";
  const rest = slash >= 0 ? pattern.slice(slash + 1) : pattern;
  const dot = rest.lastIndexOf(".");
  const dataset = dot >= 0 ? rest.slice(0, dot) : "*";
  const metric = dot >= 0 ? rest.slice(dot + 1) : rest;
  if (!metric || !dataset || !group) throw new Error(`--fail-if-worse ${text}: empty metric, data set or group`);
  if (!metric.includes("*") && !(metric in METRICS)) {
    throw new Error(`--fail-if-worse ${text}: unknown metric "${metric}"; known: ${Object.keys(METRICS).join(", ")}`);
  }
  return {
    text,
    group: globToRegExp(group),
    dataset: globToRegExp(dataset),
    metric: globToRegExp(metric),
    threshold,
  };
}

function groupParams(r: ReportData | undefined, id: string): Record<string, unknown> | undefined {
  const g = r?.groups.find((x) => x.id === id);
  if (!g) return undefined;
  return { ...g.params, ...g.params_varying };
}

export function diffReports(a: Side, b: Side, opts: DiffOptions = {}): ReportDiff {
  const ra = a.report;
  const rb = b.report;
  const groupsA = ra?.groups ?? [];
  const groupsB = rb?.groups ?? [];
  const ids = [...new Set([...groupsB.map((g) => g.id), ...groupsA.map((g) => g.id)])];
  const label = (id: string) => (groupsB.find((g) => g.id === id) ?? groupsA.find((g) => g.id === id))?.label ?? id;
  const both = ids.filter((id) => groupsA.some((g) => g.id === id) && groupsB.some((g) => g.id === id));

  // Params: per group on both sides; collapsed to `*` when identical for all such groups.
  const perGroup = new Map<string, { key: string; old: unknown; new: unknown }[]>();
  for (const id of both) {
    const pa = groupParams(ra, id)!;
    const pb = groupParams(rb, id)!;
    const keys = [...new Set([...Object.keys(pa), ...Object.keys(pb)])].sort();
    perGroup.set(
      id,
      keys.filter((k) => canonical(pa[k]) !== canonical(pb[k])).map((k) => ({ key: k, old: pa[k], new: pb[k] })),
    );
  }
  const params: ParamDelta[] = [];
  const allKeys = [...new Set([...perGroup.values()].flat().map((d) => d.key))].sort();
  for (const key of allKeys) {
    const changes = both.map((id) => perGroup.get(id)!.find((d) => d.key === key));
    const first = changes[0];
    const uniform = both.length > 1 &&
      changes.every((c) =>
        c && first && canonical(c.old) === canonical(first.old) && canonical(c.new) === canonical(first.new)
      );
    if (uniform) params.push({ group: "*", group_label: "all", key, old: first!.old, new: first!.new });
    else {
      both.forEach((id, i) => {
        const c = changes[i];
        if (c) params.push({ group: id, group_label: label(id), key, old: c.old, new: c.new });
      });
    }
  }

  // Metrics.
  const metricNames = opts.metrics?.length
    ? [...opts.metrics]
    : [...new Set([...(rb?.headline.metrics ?? []), ...(ra?.headline.metrics ?? [])])];
  const datasetsOf = (r: ReportData | undefined) => [...(r?.datasets.map((d) => d.name) ?? []), "combined"];
  const datasets = [...new Set([...datasetsOf(rb), ...datasetsOf(ra)])];
  const metrics: MetricDelta[] = [];
  for (const id of ids) {
    const ga = groupsA.find((g) => g.id === id);
    const gb = groupsB.find((g) => g.id === id);
    if (!ga || !gb) continue;
    for (const d of datasets) {
      for (const m of metricNames) {
        const o = ga.metrics[d]?.[m] ?? null;
        const n = gb.metrics[d]?.[m] ?? null;
        if (!o && !n) continue;
        const delta = o?.mean != null && n?.mean != null ? n.mean - o.mean : null;
        const better = METRICS[m]?.better ?? null;
        let change: Change;
        if (o?.mean == null) change = "added";
        else if (n?.mean == null) change = "removed";
        else if (Math.abs(delta!) < 1e-12) change = "same";
        else if (!better) change = "changed";
        else change = (delta! > 0) === (better === "higher") ? "better" : "worse";
        const spread = Math.max(o && o.n > 1 ? o.std ?? 0 : 0, n && n.n > 1 ? n.std ?? 0 : 0);
        metrics.push({
          group: id,
          group_label: label(id),
          dataset: d,
          metric: m,
          old: o,
          new: n,
          delta,
          change,
          within_std: (change === "better" || change === "worse") && spread > 0 && Math.abs(delta!) < spread,
        });
      }
    }
  }

  // Gates.
  const rules = opts.rules ?? [];
  const failures: GateFailure[] = [];
  const unmatched: string[] = [];
  for (const rule of rules) {
    let matched = false;
    // Every group of A: one that is gone from B has dropped every metric (drop = Infinity).
    for (const ga of groupsA) {
      const id = ga.id;
      const gb = groupsB.find((g) => g.id === id);
      const groupNames = [id, ga.label, ...(gb ? [gb.label] : []), ...Object.values((gb ?? ga).matrix).map(String)];
      if (!groupNames.some((x) => rule.group.test(x))) continue;
      for (const d of datasets) {
        const names = new Set([...Object.keys(ga.metrics[d] ?? {}), ...Object.keys(gb?.metrics[d] ?? {})]);
        for (const m of names) {
          if (!rule.dataset.test(d) || !rule.metric.test(m)) continue;
          const better = METRICS[m]?.better;
          if (!better) continue;
          const o = ga.metrics[d]?.[m];
          const n = gb?.metrics[d]?.[m];
          if (o?.mean == null) continue; // nothing to regress from
          matched = true;
          const delta: MetricDelta = metrics.find((x) => x.group === id && x.dataset === d && x.metric === m) ?? {
            group: id,
            group_label: label(id),
            dataset: d,
            metric: m,
            old: o,
            new: n ?? null,
            delta: n?.mean != null ? n.mean - o.mean : null,
            change: n?.mean == null ? "removed" : "changed",
            within_std: false,
          };
          const drop = n?.mean == null ? Infinity : better === "higher" ? o.mean - n.mean : n.mean - o.mean;
          if (drop > rule.threshold + 1e-12) failures.push({ rule: rule.text, delta, drop });
        }
      }
    }
    if (!matched) unmatched.push(rule.text);
  }

  return {
    a: { source: a.source, experiment: ra?.experiment ?? a.lock?.experiment },
    b: { source: b.source, experiment: rb?.experiment ?? b.lock?.experiment },
    params,
    metrics,
    groups_only_in_a: groupsA.filter((g) => !both.includes(g.id)).map((g) => g.label),
    groups_only_in_b: groupsB.filter((g) => !both.includes(g.id)).map((g) => g.label),
    stages: diffLocks(a.lock, b.lock),
    gate: { rules: rules.map((r) => r.text), failures, unmatched },
    digits: opts.digits ?? 3,
    display_names: { ...(ra?.display_names ?? {}), ...(rb?.display_names ?? {}) },
  };
}

export function diffLocks(a: LockLike | undefined, b: LockLike | undefined): StageDelta[] {
  if (!a || !b) return [];
  const ids = [...new Set([...Object.keys(a.stages), ...Object.keys(b.stages)])];
  const out: StageDelta[] = [];
  for (const id of ids) {
    const sa = a.stages[id];
    const sb = b.stages[id];
    const ka = sa?.key ?? null;
    const kb = sb?.key ?? null;
    if (ka === kb && sa && sb) continue;
    const pa = flatten(sa?.components?.params ?? {});
    const pb = flatten(sb?.components?.params ?? {});
    const keys = [...new Set([...Object.keys(pa), ...Object.keys(pb)])].sort();
    out.push({
      stage: id,
      old_key: ka,
      new_key: kb,
      params: keys.filter((k) => canonical(pa[k]) !== canonical(pb[k])).map((k) => ({
        key: k,
        old: pa[k],
        new: pb[k],
      })),
    });
  }
  return out;
}

const ARROW: Record<Change, string> = {
  better: "↑",
  worse: "↓",
  same: "=",
  changed: "≠",
  added: "new",
  removed: "gone",
};

function signed(v: number, digits: number): string {
  const s = v.toFixed(digits);
  if (Number(s) === 0) return (0).toFixed(digits);
  return v > 0 ? `+${s}` : s.replace("-", "−");
}

function deltaText(m: MetricDelta, digits: number): string {
  if (m.delta === null) return "—";
  const d = METRICS[m.metric]?.digits ?? digits;
  return signed(m.delta, d);
}

function paramValue(v: unknown): Inline {
  return v === undefined ? "—" : code(Array.isArray(v) ? v.map(formatValue).join(" / ") : formatValue(v));
}

function shortKey(k: string | null): Inline {
  return k ? code(k.replace(/^sha256:/, "").slice(0, 12)) : "—";
}

export function renderDiffMarkdown(d: ReportDiff): string {
  const names = d.display_names;
  const out: string[] = [heading(2, "strata diff")];
  const side = (tag: string, s: ReportDiff["a"]) =>
    raw(`${bold(tag).md}: ${code(s.source).md}${s.experiment ? ` (experiment ${code(s.experiment).md})` : ""}`);
  out.push(bullets([side("A (old)", d.a), side("B (new)", d.b)]));

  if (d.gate.rules.length) {
    out.push(heading(3, "Gate"));
    const lines: Inline[] = d.gate.failures.map((f) => {
      const m = f.delta;
      const what = `${m.group_label} ${displayName(names, m.dataset)} ${METRICS[m.metric]?.label ?? m.metric}`;
      const how = f.drop === Infinity
        ? "is missing in B"
        : `dropped by ${f.drop.toFixed(d.digits + 1)} (${
          formatSummary(m.metric, m.old ?? undefined, { digits: d.digits, percent: false })
        } → ${formatSummary(m.metric, m.new ?? undefined, { digits: d.digits, percent: false })})`;
      return raw(`❌ ${code(f.rule).md}: ${what} ${how}`);
    });
    for (const u of d.gate.unmatched) lines.push(raw(`⚠️ ${code(u).md} matched no metric present in A`));
    if (!d.gate.failures.length) {
      lines.unshift(
        raw(`✅ No metric got worse by more than its threshold (${d.gate.rules.map((r) => code(r).md).join(", ")}).`),
      );
    }
    out.push(bullets(lines));
  }

  out.push(heading(3, "Params that differ"));
  if (!d.params.length) out.push(italic("No param differs.").md);
  else {
    out.push(table(
      ["Runs", "Param", "A", "B"],
      d.params.map((
        p,
      ) => [p.group === "*" ? italic("all") : p.group_label, code(p.key), paramValue(p.old), paramValue(p.new)]),
    ));
  }

  out.push(heading(3, "Metrics"));
  if (!d.metrics.length) out.push(italic("No metric to compare (no run group is in both reports).").md);
  else {
    const changed = d.metrics.filter((m) => m.change !== "same").length;
    out.push(
      `${changed} of ${d.metrics.length} values changed. Mean ± std over seeds; Δ = B − A of the means; ↑ better, ↓ worse, = unchanged, ≠ changed (no better direction); ≈ the change is within one std.`,
    );
    out.push(table(
      ["Runs", "Data set", "Metric", "A", "B", "Δ", ""],
      d.metrics.map((m) => [
        m.group_label,
        displayName(names, m.dataset),
        METRICS[m.metric]?.label ?? m.metric,
        formatSummary(m.metric, m.old ?? undefined, { digits: d.digits, percent: false }),
        formatSummary(m.metric, m.new ?? undefined, { digits: d.digits, percent: false }),
        deltaText(m, d.digits),
        `${ARROW[m.change]}${m.within_std ? " ≈" : ""}`,
      ]),
      ["left", "left", "left", "right", "right", "right", "center"],
    ));
  }
  const only: Inline[] = [];
  if (d.groups_only_in_a.length) only.push(`Only in A: ${d.groups_only_in_a.join(", ")}`);
  if (d.groups_only_in_b.length) only.push(`Only in B: ${d.groups_only_in_b.join(", ")}`);
  if (only.length) out.push(bullets(only));

  if (d.stages.length) {
    out.push(heading(3, "Stages whose key changed"));
    out.push(table(
      ["Stage", "A key", "B key", "Params that differ"],
      d.stages.map((s) => [
        code(s.stage),
        shortKey(s.old_key),
        shortKey(s.new_key),
        s.params.length
          ? raw(s.params.map((p) => `${code(p.key).md}: ${inlineValue(p.old)} → ${inlineValue(p.new)}`).join("<br>"))
          : "—",
      ]),
    ));
  }
  return out.join("\n\n") + "\n";
}

function inlineValue(v: unknown): string {
  const x = paramValue(v);
  return typeof x === "string" ? x : x.md;
}
