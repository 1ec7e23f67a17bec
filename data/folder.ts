/**
 * Labelled image folders: the layouts that `import` and `stats` read.
 *
 * - `real`: `IMG/N.<ext>` + `label/N.txt` (the layout of ../shared/data/real/*), in numeric order of N;
 * - `tsv`: `labels.tsv` lines `path<TAB>label`;
 * - `gt`: `gt.txt` lines `path label` (first whitespace or comma splits; ICDAR-style
 *   `"quoted"` labels are unquoted).
 */
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from "node:path";

export const LAYOUTS = ["auto", "lmdb", "real", "tsv", "gt"] as const;
export type Layout = typeof LAYOUTS[number];

/** One sample found in the folder: the image path (absolute) and the raw label, or why it has none. */
export interface FoundSample {
  image: string;
  label?: string;
  problem?: string;
  /** A short code for `problem` (for counts by reason): empty_label, unlisted, ambiguous_image, outside_source… */
  code?: string;
  /** Where it was listed, e.g. `labels.tsv:12` or `label/7.txt`. */
  where: string;
}

async function exists(path: string, kind: "file" | "dir"): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    return kind === "file" ? st.isFile : st.isDirectory;
  } catch {
    return false;
  }
}

export async function detectLayout(dir: string, labelsFile?: string): Promise<Exclude<Layout, "auto">> {
  if (await exists(join(dir, "data.mdb"), "file")) return "lmdb";
  if (await exists(join(dir, "IMG"), "dir") && await exists(join(dir, "label"), "dir")) return "real";
  if (labelsFile) return labelsFile.endsWith(".tsv") ? "tsv" : "gt";
  if (await exists(join(dir, "labels.tsv"), "file")) return "tsv";
  if (await exists(join(dir, "gt.txt"), "file")) return "gt";
  throw new Error(
    `${dir}: cannot tell the layout: expected data.mdb (lmdb), IMG/ + label/ (real), labels.tsv (tsv) or gt.txt (gt)`,
  );
}

export const IMAGE_EXT = new Set([".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"]);

/** Lists the samples of a folder in a layout, in a deterministic order. */
export async function listSamples(
  dir: string,
  layout: Exclude<Layout, "auto" | "lmdb">,
  labelsFile?: string,
): Promise<FoundSample[]> {
  const root = resolve(dir);
  if (layout === "real") {
    const images = new Map<string, string>();
    const clashes = new Map<string, string[]>();
    for await (const e of Deno.readDir(join(root, "IMG"))) {
      if (e.isFile && IMAGE_EXT.has(extname(e.name).toLowerCase())) {
        const stem = basename(e.name, extname(e.name));
        const prev = images.get(stem);
        if (prev !== undefined) clashes.set(stem, [...(clashes.get(stem) ?? [prev]), e.name]);
        images.set(stem, e.name);
      }
    }
    const labels = new Set<string>();
    for await (const e of Deno.readDir(join(root, "label"))) {
      if (e.isFile && e.name.endsWith(".txt")) labels.add(basename(e.name, ".txt"));
    }
    const stems = [...new Set([...images.keys(), ...labels])].sort(compareStems);
    const out: FoundSample[] = [];
    for (const stem of stems) {
      const clash = clashes.get(stem);
      if (clash) {
        // 1.jpg and 1.png: label/1.txt cannot say which image it labels, so neither is trusted.
        const names = clash.sort().map((n) => `IMG/${n}`);
        for (const n of clash) {
          out.push({
            image: join(root, "IMG", n),
            problem: `${names.join(" and ")} share the number ${stem}; label/${stem}.txt cannot tell which it labels`,
            code: "ambiguous_image",
            where: `IMG/${n}`,
          });
        }
        continue;
      }
      const img = images.get(stem);
      const where = `IMG/${img ?? stem + ".*"}`;
      if (!img) {
        out.push({
          image: join(root, "IMG", stem),
          problem: `no image for label/${stem}.txt`,
          code: "unlisted",
          where,
        });
        continue;
      }
      if (!labels.has(stem)) {
        out.push({ image: join(root, "IMG", img), problem: `no label/${stem}.txt`, code: "unlisted", where });
        continue;
      }
      const label = await readLabel(join(root, "label", `${stem}.txt`));
      out.push({ image: join(root, "IMG", img), ...label, where });
    }
    return out;
  }
  const file = resolve(root, labelsFile ?? (layout === "tsv" ? "labels.tsv" : "gt.txt"));
  const name = relative(root, file) || basename(file);
  // Everything read must be inside the source folder: that is what the stage's input digest covers.
  const outside = (p: string) => {
    const rel = relative(root, p);
    return rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel);
  };
  if (outside(file)) throw new Error(`${file}: the labels file is outside the source folder ${root}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await Deno.readFile(file));
  } catch (e) {
    throw new Error(`${file}: cannot read the labels file: ${(e as Error).message}`);
  }
  const out: FoundSample[] = [];
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line.trim() === "") continue;
    const where = `${name}:${n + 1}`;
    let path: string, label: string;
    if (layout === "tsv") {
      const tab = line.indexOf("\t");
      if (tab < 0) {
        out.push({ image: "", problem: `no TAB between path and label`, where });
        continue;
      }
      [path, label] = [line.slice(0, tab), line.slice(tab + 1)];
    } else {
      const m = /^(\S+?),?\s+(.*)$/.exec(line.trim());
      if (!m) {
        out.push({ image: "", problem: `expected "path label"`, where });
        continue;
      }
      [path, label] = [m[1], m[2]];
      const quoted = /^"(.*)"$/.exec(label.trim());
      if (quoted) label = quoted[1].replace(/\\"/g, '"');
    }
    const image = isAbsolute(path) ? path : resolve(dirname(file), path);
    label = label.trim();
    if (outside(image)) {
      // Not covered by the input's digest: a changed image there would leave the stage "fresh".
      out.push({ image, problem: `image path ${path} leaves the source folder`, code: "outside_source", where });
      continue;
    }
    out.push(label ? { image, label, where } : { image, problem: "empty label", code: "empty_label", where });
  }
  return out;
}

function compareStems(a: string, b: string): number {
  const na = /^\d+$/.test(a) ? Number(a) : NaN, nb = /^\d+$/.test(b) ? Number(b) : NaN;
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  if (!Number.isNaN(na)) return -1;
  if (!Number.isNaN(nb)) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readLabel(path: string): Promise<{ label?: string; problem?: string }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    return { problem: `cannot read ${basename(path)}: ${(e as Error).message}` };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { problem: `label file is not valid UTF-8` };
  }
  const label = text.replace(/^\uFEFF/, "").trim();
  return label ? { label } : { problem: "empty label" };
}
