/**
 * A small SVG line-chart writer for training curves: a title, x and y axes
 * with "nice" ticks and grid lines, axis labels, one polyline per series and
 * a legend. The SVG is built as an element tree (`el`) whose attributes and
 * text are XML-escaped, so any run name is safe; output is deterministic.
 */

export interface Element {
  readonly tag: string;
  readonly attrs: Readonly<Record<string, string | number | undefined>>;
  readonly children: readonly (Element | string)[];
}

export function el(
  tag: string,
  attrs: Record<string, string | number | undefined> = {},
  children: readonly (Element | string)[] = [],
): Element {
  return { tag, attrs, children };
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Rounds coordinates so files are small and stable across platforms. */
function fmt(v: string | number): string {
  if (typeof v === "string") return v;
  const r = Math.round(v * 100) / 100;
  return String(r === 0 ? 0 : r);
}

export function render(node: Element | string, indent = ""): string {
  if (typeof node === "string") return indent + escapeXml(node);
  const attrs = Object.entries(node.attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${escapeXml(fmt(v!))}"`)
    .join("");
  if (node.children.length === 0) return `${indent}<${node.tag}${attrs}/>`;
  if (node.children.every((c) => typeof c === "string")) {
    return `${indent}<${node.tag}${attrs}>${node.children.map((c) => escapeXml(c as string)).join("")}</${node.tag}>`;
  }
  const inner = node.children.map((c) => render(c, indent + "  ")).join("\n");
  return `${indent}<${node.tag}${attrs}>\n${inner}\n${indent}</${node.tag}>`;
}

/**
 * About `count` round tick values (1, 2, 2.5 or 5 × 10^k) covering [min, max].
 * Returns the ticks and the (possibly widened) domain they span.
 */
export function niceTicks(min: number, max: number, count = 5): { ticks: number[]; min: number; max: number } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { ticks: [0, 1], min: 0, max: 1 };
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; lo + i * step <= hi + step * 1e-9; i++) ticks.push(roundTo(lo + i * step, step));
  return { ticks, min: lo, max: hi };
}

function roundTo(v: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 2);
  const r = Number(v.toFixed(Math.min(20, decimals)));
  return r === 0 ? 0 : r;
}

/** Tick label: compact, with thousands as "k" for large step counts. */
export function tickLabel(v: number, step: number): string {
  if (Math.abs(v) >= 10000 && step >= 1000) return `${Number((v / 1000).toFixed(3))}k`;
  const decimals = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9) + (isRound(step) ? 0 : 1));
  return v.toFixed(decimals);
}

function isRound(step: number): boolean {
  const m = step / Math.pow(10, Math.floor(Math.log10(step)));
  return Math.abs(m - Math.round(m)) < 1e-9 && Math.round(m) !== 25;
}

/** Okabe–Ito colours (readable for colour-blind readers), then a few more. */
export const PALETTE = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#F0E442",
  "#7F7F7F",
  "#8C564B",
];
/** Dash patterns to tell apart runs of one colour (e.g. seeds of one model). */
export const DASHES = [undefined, "6 3", "2 3", "8 3 2 3", "1 2"];

export interface Series {
  readonly label: string;
  /** [x, y] points; non-finite y values break the line. */
  readonly points: readonly (readonly [number, number])[];
  readonly color?: string;
  readonly dash?: string;
}

export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly width?: number;
  readonly height?: number;
  /** Fixed y range (e.g. [0, 1] for accuracies); otherwise from the data. */
  readonly yDomain?: readonly [number, number];
  /** Text shown in the plot area when no series has points. */
  readonly emptyText?: string;
}

const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

/** Renders a line chart as a standalone SVG document. */
export function lineChart(opts: LineChartOptions): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const series = opts.series.map((s, i) => ({
    ...s,
    color: s.color ?? PALETTE[i % PALETTE.length],
    points: s.points.filter(([x]) => Number.isFinite(x)),
  }));
  const finite = series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));

  // Legend on the right, sized by its longest label (≈ 7 px per character at 12 px).
  const legendWidth = series.length ? Math.min(260, 40 + Math.max(...series.map((s) => [...s.label].length)) * 7) : 0;
  const margin = { top: 44, right: 16 + legendWidth, bottom: 52, left: 64 };
  const plotW = Math.max(50, width - margin.left - margin.right);
  const plotH = Math.max(50, height - margin.top - margin.bottom);

  const xs = finite.map(([x]) => x);
  const ys = finite.map(([, y]) => y);
  const xt = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1, 6);
  const yt = opts.yDomain
    ? niceTicks(opts.yDomain[0], opts.yDomain[1], 5)
    : niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1, 5);
  const sx = (x: number) => margin.left + ((x - xt.min) / (xt.max - xt.min)) * plotW;
  const sy = (y: number) => margin.top + plotH - ((y - yt.min) / (yt.max - yt.min)) * plotH;
  const xStep = xt.ticks.length > 1 ? xt.ticks[1] - xt.ticks[0] : 1;
  const yStep = yt.ticks.length > 1 ? yt.ticks[1] - yt.ticks[0] : 1;

  const grid = el("g", { stroke: "#e3e3e3", "stroke-width": 1 }, [
    ...yt.ticks.map((t) => el("line", { x1: margin.left, x2: margin.left + plotW, y1: sy(t), y2: sy(t) })),
    ...xt.ticks.map((t) => el("line", { x1: sx(t), x2: sx(t), y1: margin.top, y2: margin.top + plotH })),
  ]);
  const axes = el("g", { stroke: "#333333", "stroke-width": 1.2, fill: "none" }, [
    el("line", { x1: margin.left, x2: margin.left + plotW, y1: margin.top + plotH, y2: margin.top + plotH }),
    el("line", { x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + plotH }),
    ...xt.ticks.map((t) => el("line", { x1: sx(t), x2: sx(t), y1: margin.top + plotH, y2: margin.top + plotH + 5 })),
    ...yt.ticks.map((t) => el("line", { x1: margin.left - 5, x2: margin.left, y1: sy(t), y2: sy(t) })),
  ]);
  const tickText = el("g", { fill: "#333333", "font-size": 11 }, [
    ...xt.ticks.map((t) =>
      el("text", { x: sx(t), y: margin.top + plotH + 18, "text-anchor": "middle" }, [tickLabel(t, xStep)])
    ),
    ...yt.ticks.map((t) =>
      el("text", { x: margin.left - 8, y: sy(t) + 4, "text-anchor": "end" }, [tickLabel(t, yStep)])
    ),
  ]);
  const labels = el("g", { fill: "#111111" }, [
    el("text", { x: margin.left + plotW / 2, y: 26, "text-anchor": "middle", "font-size": 16, "font-weight": "bold" }, [
      opts.title,
    ]),
    el("text", { x: margin.left + plotW / 2, y: height - 12, "text-anchor": "middle", "font-size": 13 }, [opts.xLabel]),
    el("text", {
      x: 0,
      y: 0,
      transform: `translate(16 ${margin.top + plotH / 2}) rotate(-90)`,
      "text-anchor": "middle",
      "font-size": 13,
    }, [opts.yLabel]),
  ]);

  const lines = series.map((s) => {
    const segments: string[] = [];
    let current: string[] = [];
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y)) {
        if (current.length) segments.push(current.join(" "));
        current = [];
        continue;
      }
      current.push(`${current.length ? "L" : "M"}${fmt(sx(x))} ${fmt(sy(y))}`);
    }
    if (current.length) segments.push(current.join(" "));
    const few = s.points.length <= 20;
    return el("g", { "data-series": s.label }, [
      el("path", {
        d: segments.join(" ") || undefined,
        fill: "none",
        stroke: s.color,
        "stroke-width": 2,
        "stroke-dasharray": s.dash,
        "stroke-linejoin": "round",
        "stroke-linecap": "round",
      }),
      ...(few
        ? s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) =>
          el("circle", { cx: sx(x), cy: sy(y), r: 2.5, fill: s.color })
        )
        : []),
    ]);
  });

  const legendX = margin.left + plotW + 16;
  // Many runs: rows get tighter (and the text smaller) so the legend stays beside the plot.
  const rowH = Math.min(20, (plotH - 8) / Math.max(1, series.length));
  const legend = el(
    "g",
    { "font-size": Math.max(7, Math.min(12, rowH * 0.7)), fill: "#111111" },
    series.map((s, i) => {
      const y = margin.top + 8 + i * rowH;
      return el("g", {}, [
        el("line", {
          x1: legendX,
          x2: legendX + 24,
          y1: y,
          y2: y,
          stroke: s.color,
          "stroke-width": 2.5,
          "stroke-dasharray": s.dash,
        }),
        el("text", { x: legendX + 30, y, "dominant-baseline": "middle" }, [truncate(s.label, 34)]),
      ]);
    }),
  );
  const empty = finite.length === 0
    ? [
      el("text", {
        x: margin.left + plotW / 2,
        y: margin.top + plotH / 2,
        "text-anchor": "middle",
        "font-size": 13,
        fill: "#777777",
      }, [opts.emptyText ?? "no data"]),
    ]
    : [];

  const svg = el("svg", {
    xmlns: "http://www.w3.org/2000/svg",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "font-family": FONT,
    role: "img",
    "aria-label": opts.title,
  }, [
    el("title", {}, [opts.title]),
    el("rect", { x: 0, y: 0, width, height, fill: "#ffffff" }),
    grid,
    axes,
    tickText,
    labels,
    el("g", { "clip-path": "url(#plot)" }, lines),
    el("defs", {}, [
      el("clipPath", { id: "plot" }, [
        el("rect", { x: margin.left - 3, y: margin.top - 3, width: plotW + 6, height: plotH + 6 }),
      ]),
    ]),
    legend,
    ...empty,
  ]);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${render(svg)}\n`;
}

function truncate(s: string, n: number): string {
  const chars = [...s];
  return chars.length <= n ? s : chars.slice(0, n - 1).join("") + "…";
}
