/**
 * Training-curve charts of a report: loss and validation accuracy against
 * samples seen (step × batch size; against step when a run's batch size is
 * unknown), one line per run, one colour per run group and one dash per seed.
 */
import type { CurvePoint, CurveRun, Scalar } from "./model.ts";
import { code, escapeText } from "./markdown.ts";
import { movingAverage } from "./stats.ts";
import { DASHES, lineChart, PALETTE, type Series } from "./svg.ts";

export interface ChartFile {
  readonly file: string;
  readonly title: string;
  readonly svg: string;
  /** One line of Markdown for the README under the image. */
  readonly caption: string;
}

export interface CurveChartOptions {
  /** Moving-average window for the loss; 0 picks one from the number of points (about 1/50 of them). */
  readonly smooth: number;
  /** The `val` field plotted in val_accuracy.svg. */
  readonly valMetric: string;
  readonly valLabel: string;
  readonly seedAxis: string;
}

function styleFor(curves: readonly CurveRun[]): (c: CurveRun) => { color: string; dash?: string } {
  const groups = [...new Set(curves.map((c) => c.groupId))];
  const seeds = new Map<string, Scalar[]>();
  for (const c of curves) {
    const list = seeds.get(c.groupId) ?? [];
    if (c.seed !== null && !list.includes(c.seed)) list.push(c.seed);
    seeds.set(c.groupId, list);
  }
  return (c) => ({
    color: PALETTE[groups.indexOf(c.groupId) % PALETTE.length],
    dash: DASHES[Math.max(0, (seeds.get(c.groupId) ?? []).indexOf(c.seed as Scalar)) % DASHES.length],
  });
}

function seriesLabel(c: CurveRun, seedAxis: string): string {
  return c.seed === null ? c.groupLabel : `${c.groupLabel} ${seedAxis}=${c.seed}`;
}

/** The recognition cross-entropy of a curve point: `ce_original` (ConCLR) or `ce` (ABINet), if logged. */
function recognitionLoss(p: CurvePoint): number | undefined {
  return p.parts?.ce_original ?? p.parts?.ce;
}

/** The charts that have data (none for runs without curves). */
export function curveCharts(curves: readonly CurveRun[], opts: CurveChartOptions): ChartFile[] {
  const style = styleFor(curves);
  const charts: ChartFile[] = [];
  // Samples seen compares runs of different batch sizes (and is what a data budget is written in).
  const bySamples = curves.length > 0 && curves.every((c) => c.batchSize !== undefined);
  const xLabel = bySamples ? "samples seen" : "step";
  const xOf = (c: CurveRun, p: CurvePoint) => bySamples ? p.step * c.batchSize! : p.step;

  const smoothedSeries = (runs: readonly CurveRun[], value: (p: CurvePoint) => number | undefined) => {
    const longest = Math.max(...runs.map((c) => c.points.length));
    const window = opts.smooth > 0 ? opts.smooth : Math.max(1, Math.round(longest / 50));
    const series: Series[] = runs.map((c) => {
      const pts = c.points.filter((p) => value(p) !== undefined);
      const smoothed = movingAverage(pts.map((p) => value(p)!), window);
      return {
        label: seriesLabel(c, opts.seedAxis),
        points: pts.map((p, i) => [xOf(c, p), smoothed[i]] as const),
        ...style(c),
      };
    });
    return { series, window };
  };
  const averaged = (window: number) => window > 1 ? ` (moving average over ${window} logged points)` : "";

  const withLoss = curves.filter((c) => c.points.some((p) => p.loss !== undefined));
  if (withLoss.length) {
    const { series, window } = smoothedSeries(withLoss, (p) => p.loss);
    const title = "Training loss";
    charts.push({
      file: "loss.svg",
      title,
      svg: lineChart({ title, xLabel, yLabel: "loss", series }),
      caption: `Training loss per run${averaged(window)}: each model's whole objective.`,
    });
  }

  // Objectives differ between families (ConCLR adds views and a contrastive term), so the recognition
  // cross-entropy on the original images is what compares them; drawn when some objective is more than that.
  const withCe = curves.filter((c) => c.points.some((p) => recognitionLoss(p) !== undefined));
  const differs = withCe.some((c) => c.points.some((p) => p.loss !== undefined && recognitionLoss(p) !== p.loss));
  if (withCe.length && differs) {
    const { series, window } = smoothedSeries(withCe, recognitionLoss);
    const title = "Recognition loss";
    charts.push({
      file: "recognition_loss.svg",
      title,
      svg: lineChart({ title, xLabel, yLabel: "cross-entropy", series }),
      caption: `Cross-entropy on the original images (not the ConAug views) per run${
        averaged(window)
      }: comparable across model families.`,
    });
  }

  const withVal = curves.filter((c) => c.points.some((p) => p.val?.[opts.valMetric] !== undefined));
  if (withVal.length) {
    const series: Series[] = withVal.map((c) => ({
      label: seriesLabel(c, opts.seedAxis),
      points: c.points.filter((p) => p.val?.[opts.valMetric] !== undefined).map((p) =>
        [xOf(c, p), p.val![opts.valMetric]] as const
      ),
      ...style(c),
    }));
    const title = `Validation ${opts.valLabel}`;
    charts.push({
      file: "val_accuracy.svg",
      title,
      svg: lineChart({ title, xLabel, yLabel: opts.valLabel, series, yDomain: [0, 1] }),
      caption: `Validation ${escapeText(opts.valLabel)} (${code(opts.valMetric).md}) per run, at each validation step.`,
    });
  }
  return charts;
}
