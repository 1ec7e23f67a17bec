/**
 * Data set statistics for an STR LMDB or an image folder (a labelled layout
 * from `data/folder.ts`, or plain images without labels): sample count,
 * label length histogram, character frequency, image formats and sizes.
 * Image sizes come from the file headers (no decoding), so it is fast.
 *
 * `statsMarkdown` starts with the sample count on its first line; `deno
 * task stats PATH` prints exactly that Markdown.
 */
import { basename, extname, join, resolve } from "node:path";
import { detectLayout, IMAGE_EXT, listSamples } from "./folder.ts";
import { probeImage } from "./image.ts";
import { openLmdb } from "./lmdb.ts";

export interface Distribution {
  min: number;
  max: number;
  mean: number;
  median: number;
  p5: number;
  p95: number;
}

export interface DataStats {
  source: string;
  /** `LMDB`, `image folder, layout real|tsv|gt` or `image folder, images only`. */
  type: string;
  /** Samples stored / listed. */
  count: number;
  /** Samples read for the statistics (≤ count when `limit` is set). */
  examined: number;
  /** Samples with a problem (missing/empty image, bad label…), by reason. */
  problems: Record<string, number>;
  /** What is wrong, in words (num-samples that disagrees with the data, the first listed problems). */
  notes?: string[];
  labels?: {
    unique: number;
    length: Distribution;
    /** Label length (code points) → count. */
    length_histogram: Record<string, number>;
    /** [character, count], most frequent first (a list: object keys would reorder digits). */
    char_frequency: [string, number][];
    /** Labels by character classes: lowercase-only, has uppercase, has digits, has other characters. */
    classes: Record<string, number>;
  };
  images: {
    formats: Record<string, number>;
    width: Distribution;
    height: Distribution;
    aspect: Distribution;
    /** Height buckets (px) → count. */
    height_histogram: Record<string, number>;
    /** Width / height buckets → count. */
    aspect_histogram: Record<string, number>;
    /** Images whose header gave no size. */
    unknown_size: number;
  };
}

function distribution(values: number[]): Distribution {
  if (values.length === 0) return { min: 0, max: 0, mean: 0, median: 0, p5: 0, p95: 0 };
  const v = Float64Array.from(values).sort();
  const q = (f: number) => v[Math.min(v.length - 1, Math.floor(f * (v.length - 1) + 0.5))];
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { min: v[0], max: v[v.length - 1], mean: round(mean), median: q(0.5), p5: q(0.05), p95: q(0.95) };
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function bucket(x: number, edges: number[], unit = ""): string {
  for (let i = 0; i < edges.length; i++) {
    if (x < edges[i]) return i === 0 ? `<${edges[0]}${unit}` : `${edges[i - 1]}–${edges[i]}${unit}`;
  }
  return `≥${edges[edges.length - 1]}${unit}`;
}

const HEIGHT_EDGES = [16, 24, 32, 48, 64, 96, 128, 256];
const ASPECT_EDGES = [0.5, 1, 2, 3, 4, 6, 8];

class Collector {
  lengths: number[] = [];
  chars = new Map<string, number>();
  unique = new Set<string>();
  classes: Record<string, number> = { lowercase_only: 0, has_uppercase: 0, has_digit: 0, has_other: 0 };
  widths: number[] = [];
  heights: number[] = [];
  aspects: number[] = [];
  formats: Record<string, number> = {};
  unknownSize = 0;
  problems: Record<string, number> = {};
  notes: string[] = [];
  examined = 0;
  hasLabels = false;

  label(text: string) {
    this.hasLabels = true;
    const cps = [...text];
    this.lengths.push(cps.length);
    if (this.unique.size < 2_000_000) this.unique.add(text);
    for (const c of cps) this.chars.set(c, (this.chars.get(c) ?? 0) + 1);
    if (/[A-Z]/.test(text)) this.classes.has_uppercase++;
    if (/[0-9]/.test(text)) this.classes.has_digit++;
    if (/[^A-Za-z0-9]/.test(text)) this.classes.has_other++;
    if (/^[a-z]+$/.test(text)) this.classes.lowercase_only++;
  }

  image(bytes: Uint8Array) {
    const p = probeImage(bytes);
    this.formats[p.format] = (this.formats[p.format] ?? 0) + 1;
    if (p.width && p.height) {
      this.widths.push(p.width);
      this.heights.push(p.height);
      this.aspects.push(p.width / p.height);
    } else {
      this.unknownSize++;
    }
  }

  problem(reason: string) {
    this.problems[reason] = (this.problems[reason] ?? 0) + 1;
  }

  result(source: string, type: string, count: number): DataStats {
    const hist = (values: number[], key: (x: number) => string) => {
      const out: Record<string, number> = {};
      for (const v of values) out[key(v)] = (out[key(v)] ?? 0) + 1;
      return out;
    };
    const lengthHist: Record<string, number> = {};
    for (const l of [...this.lengths].sort((a, b) => a - b)) lengthHist[l] = (lengthHist[l] ?? 0) + 1;
    const orderedBuckets = (edges: number[], unit: string, values: number[]) => {
      const h = hist(values, (x) => bucket(x, edges, unit));
      const keys = [bucket(-Infinity, edges, unit), ...edges.map((e) => bucket(e, edges, unit))];
      return Object.fromEntries(keys.filter((k) => h[k]).map((k) => [k, h[k]]));
    };
    return {
      source,
      type,
      count,
      examined: this.examined,
      problems: this.problems,
      ...(this.notes.length ? { notes: this.notes } : {}),
      ...(this.hasLabels
        ? {
          labels: {
            unique: this.unique.size,
            length: distribution(this.lengths),
            length_histogram: lengthHist,
            char_frequency: [...this.chars].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
            classes: this.classes,
          },
        }
        : {}),
      images: {
        formats: this.formats,
        width: distribution(this.widths),
        height: distribution(this.heights),
        aspect: { ...distribution(this.aspects.map((a) => round(a, 2))) },
        height_histogram: orderedBuckets(HEIGHT_EDGES, " px", this.heights),
        aspect_histogram: orderedBuckets(ASPECT_EDGES, "", this.aspects),
        unknown_size: this.unknownSize,
      },
    };
  }
}

export interface StatsOptions {
  /** Examine only the first `limit` samples (the count is still the full one). */
  limit?: number;
  /** Called every few hundred samples. */
  progress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

async function isLmdb(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(join(path, "data.mdb"))).isFile;
  } catch {
    return false;
  }
}

/** Statistics of an LMDB directory or an image folder. */
export async function computeStats(path: string, opts: StatsOptions = {}): Promise<DataStats> {
  const source = resolve(path);
  const st = await Deno.stat(source).catch(() => {
    throw new Error(`${source}: no such file or directory`);
  });
  if (!st.isDirectory) throw new Error(`${source}: not a directory (expected an LMDB directory or an image folder)`);
  const c = new Collector();
  const limit = opts.limit ?? Infinity;
  const tick = (n: number, total: number) => {
    if (opts.signal?.aborted) throw new Error("stats interrupted");
    if (n % 500 === 0) opts.progress?.(n, total);
  };
  if (await isLmdb(source)) {
    const r = await openLmdb(source, { policy: "skip" });
    try {
      if (r.inferredSize) c.problem("missing_num_samples");
      if (r.declaredSize !== undefined) c.problem("num_samples_mismatch");
      if (r.sizeNote) c.notes.push(r.sizeNote);
      for (let i = 1; i <= Math.min(r.size, limit); i++) {
        tick(i, r.size);
        c.examined++;
        const s = r.read(i);
        if (!s.ok) {
          c.problem(s.reason);
          // Still count what is there.
          const img = r.getRaw(`image-${String(i).padStart(9, "0")}`);
          if (img?.length) c.image(img);
          continue;
        }
        c.label(s.sample.label);
        c.image(s.sample.image);
      }
      return c.result(source, "LMDB", r.size);
    } finally {
      await r.close();
    }
  }
  let layout: "real" | "tsv" | "gt" | undefined;
  try {
    const detected = await detectLayout(source);
    layout = detected === "lmdb" ? undefined : detected;
  } catch {
    layout = undefined;
  }
  if (layout) {
    const found = await listSamples(source, layout);
    for (const [n, s] of found.entries()) {
      if (n >= limit) break;
      tick(n, found.length);
      c.examined++;
      if (s.problem) {
        c.problem(
          s.code === "ambiguous_image" || s.code === "outside_source"
            ? s.code
            : s.problem.startsWith("no label")
            ? "missing_label"
            : s.problem.replace(/ /g, "_"),
        );
        if (c.notes.length < 10) c.notes.push(`${s.where}: ${s.problem}`);
        // Outside the folder: not part of the data set (and not covered by its digest).
        if (!s.image || s.problem.startsWith("no image") || s.code === "outside_source") continue;
      } else {
        c.label(s.label!);
      }
      try {
        const bytes = await Deno.readFile(s.image);
        if (bytes.length === 0) c.problem("empty_image");
        else c.image(bytes);
      } catch {
        c.problem("missing_image");
      }
    }
    return c.result(source, `image folder, layout ${layout}`, found.length);
  }
  const files: string[] = [];
  const walk = async (dir: string) => {
    const entries = await Array.fromAsync(Deno.readDir(dir));
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (e.isDirectory) await walk(join(dir, e.name));
      else if (e.isFile && IMAGE_EXT.has(extname(e.name).toLowerCase())) files.push(join(dir, e.name));
    }
  };
  await walk(source);
  for (const [n, f] of files.entries()) {
    if (n >= limit) break;
    tick(n, files.length);
    c.examined++;
    const bytes = await Deno.readFile(f);
    if (bytes.length === 0) c.problem("empty_image");
    else c.image(bytes);
  }
  return c.result(source, "image folder, images only", files.length);
}

function table(headers: string[], rows: (string | number)[][]): string {
  const esc = (x: string | number) => String(x).replace(/\|/g, "\\|");
  return [
    `| ${headers.join(" | ")} |`,
    `| ${headers.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

function showChar(c: string): string {
  if (c === " ") return "␠ (space)";
  if (c === "`") return "\\`";
  if (/\s|\p{C}/u.test(c)) return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
  return `\`${c}\``;
}

/** Markdown summary; its first line gives the sample count. */
export function statsMarkdown(
  s: DataStats,
  opts: { topChars?: number; name?: string; showSource?: boolean } = {},
): string {
  const name = opts.name ?? (basename(s.source) || s.source);
  const lines: string[] = [];
  lines.push(`${s.count} samples in \`${name}\` (${s.type})`);
  lines.push("");
  if (opts.showSource ?? true) lines.push(`Source: \`${s.source}\``);
  if (s.examined < s.count) lines.push(`Statistics over the first ${s.examined} samples.`);
  const problems = Object.entries(s.problems);
  if (problems.length) {
    lines.push("", "## Problems", "", table(["reason", "samples"], problems.map(([k, v]) => [k, v])));
    if (s.notes?.length) lines.push("", ...s.notes.map((n) => `- ${n}`));
  }
  if (s.labels) {
    const l = s.labels;
    lines.push("", "## Labels", "");
    lines.push(
      `${l.unique} distinct labels; length min ${l.length.min}, median ${l.length.median}, mean ${l.length.mean}, max ${l.length.max}.`,
    );
    lines.push("", table(["length", "samples"], Object.entries(l.length_histogram).map(([k, v]) => [k, v])));
    lines.push("", table(["label class", "samples"], Object.entries(l.classes).map(([k, v]) => [k, v])));
    const total = l.char_frequency.reduce((a, [, n]) => a + n, 0);
    const top = l.char_frequency.slice(0, opts.topChars ?? 100);
    lines.push("", `### Character frequency (${l.char_frequency.length} distinct characters)`, "");
    lines.push(
      table(["char", "count", "share"], top.map(([k, v]) => [showChar(k), v, `${(100 * v / total).toFixed(2)}%`])),
    );
  } else {
    lines.push("", "No labels (plain image folder).");
  }
  const im = s.images;
  lines.push("", "## Images", "");
  lines.push(table(["format", "samples"], Object.entries(im.formats).map(([k, v]) => [k, v])));
  const dist = (label: string, d: Distribution) => [label, d.min, d.p5, d.median, d.mean, d.p95, d.max];
  lines.push(
    "",
    table(["", "min", "p5", "median", "mean", "p95", "max"], [
      dist("width (px)", im.width),
      dist("height (px)", im.height),
      dist("width / height", im.aspect),
    ]),
  );
  lines.push("", table(["height", "samples"], Object.entries(im.height_histogram).map(([k, v]) => [k, v])));
  lines.push("", table(["width / height", "samples"], Object.entries(im.aspect_histogram).map(([k, v]) => [k, v])));
  if (im.unknown_size) lines.push("", `${im.unknown_size} images without a readable size in their header.`);
  return lines.join("\n") + "\n";
}
