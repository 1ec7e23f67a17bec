/**
 * The fonts the synthetic word renderer draws with: DejaVu (ttf) and the
 * @fontsource packages (latin woff2), found in node_modules, in a fixed
 * order so that the same seed picks the same face. Each face is registered
 * with @napi-rs/canvas under its own alias, so `ctx.font` selects it exactly.
 */
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface FontFace {
  /** Family name as the `fonts` param accepts it, e.g. `roboto`, `dejavu-serif`. */
  family: string;
  weight: number;
  italic: boolean;
  path: string;
  /** The canvas alias: use `${px}px "${alias}"`. */
  alias: string;
  /** No distinct lowercase glyphs (Bebas Neue, Permanent Marker): text drawn with it is upper-cased. */
  capsOnly: boolean;
}

const NODE_MODULES = fileURLToPath(new URL("../node_modules/", import.meta.url));

export const FONTSOURCE_FAMILIES = [
  "bebas-neue",
  "courier-prime",
  "lobster",
  "merriweather",
  "oswald",
  "permanent-marker",
  "playfair-display",
  "roboto",
  "roboto-slab",
  "source-code-pro",
] as const;

const DEJAVU: [string, string, number, boolean][] = [
  ["dejavu-sans", "DejaVuSans.ttf", 400, false],
  ["dejavu-sans", "DejaVuSans-Bold.ttf", 700, false],
  ["dejavu-sans", "DejaVuSans-Oblique.ttf", 400, true],
  ["dejavu-sans", "DejaVuSans-BoldOblique.ttf", 700, true],
  ["dejavu-sans", "DejaVuSans-ExtraLight.ttf", 200, false],
  ["dejavu-sans-condensed", "DejaVuSansCondensed.ttf", 400, false],
  ["dejavu-sans-condensed", "DejaVuSansCondensed-Bold.ttf", 700, false],
  ["dejavu-serif", "DejaVuSerif.ttf", 400, false],
  ["dejavu-serif", "DejaVuSerif-Bold.ttf", 700, false],
  ["dejavu-serif", "DejaVuSerif-Italic.ttf", 400, true],
  ["dejavu-serif-condensed", "DejaVuSerifCondensed.ttf", 400, false],
  ["dejavu-serif-condensed", "DejaVuSerifCondensed-Bold.ttf", 700, false],
  ["dejavu-sans-mono", "DejaVuSansMono.ttf", 400, false],
  ["dejavu-sans-mono", "DejaVuSansMono-Bold.ttf", 700, false],
];

let catalog: FontFace[] | undefined;

/** Every face found, in a fixed order (family, weight, style). */
export function fontCatalog(): FontFace[] {
  if (catalog) return catalog;
  const faces: FontFace[] = [];
  for (const [family, file, weight, italic] of DEJAVU) {
    const path = join(NODE_MODULES, "dejavu-fonts-ttf", "ttf", file);
    if (exists(path)) faces.push(face(family, weight, italic, path));
  }
  for (const family of FONTSOURCE_FAMILIES) {
    const dir = join(NODE_MODULES, "@fontsource", family, "files");
    let names: string[];
    try {
      names = [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch {
      continue;
    }
    const re = new RegExp(`^${family}-latin-(\\d+)-(normal|italic)\\.woff2$`);
    for (const name of names.sort()) {
      const m = re.exec(name);
      if (m) faces.push(face(family, Number(m[1]), m[2] === "italic", join(dir, name)));
    }
  }
  faces.sort((a, b) =>
    a.family < b.family ? -1 : a.family > b.family ? 1 : a.weight - b.weight || Number(a.italic) - Number(b.italic)
  );
  return catalog = faces;
}

function face(family: string, weight: number, italic: boolean, path: string): FontFace {
  return {
    family,
    weight,
    italic,
    path,
    alias: `strata-${family}-${weight}${italic ? "-italic" : ""}`,
    capsOnly: family === "bebas-neue" || family === "permanent-marker",
  };
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const registered = new Set<string>();

/**
 * The faces of the given families (all when empty), registered with the
 * canvas; weights filtered to [minWeight, maxWeight]; italics optional.
 */
export async function loadFonts(
  families: readonly string[] = [],
  opts: { minWeight?: number; maxWeight?: number; italic?: boolean } = {},
): Promise<FontFace[]> {
  const all = fontCatalog();
  const known = [...new Set(all.map((f) => f.family))];
  for (const f of families) {
    if (!known.includes(f)) throw new Error(`unknown font family "${f}"; installed: ${known.join(", ")}`);
  }
  const chosen = all.filter((f) =>
    (families.length === 0 || families.includes(f.family)) &&
    f.weight >= (opts.minWeight ?? 0) && f.weight <= (opts.maxWeight ?? 1000) &&
    (opts.italic ?? true ? true : !f.italic)
  );
  if (chosen.length === 0) {
    throw new Error(`no font faces match families [${families.join(", ")}] and the weight range`);
  }
  const { GlobalFonts } = await import("@napi-rs/canvas");
  for (const f of chosen) {
    if (registered.has(f.alias)) continue;
    if (!GlobalFonts.registerFromPath(f.path, f.alias)) throw new Error(`cannot load font ${basename(f.path)}`);
    registered.add(f.alias);
  }
  return chosen;
}
