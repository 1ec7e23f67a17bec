/**
 * The code digest of a stage kind: its module and every project-local module
 * it imports (statically, or dynamically with a string literal), found by
 * scanning import specifiers. Bare and `npm:` specifiers contribute their
 * pinned specifier (through the nearest deno.json's import map).
 */
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { DigestCache } from "./digest.ts";
import { digestOf, sha256Text } from "./hash.ts";

export interface CodeDigest {
  digest: string;
  /** Project-relative path (or absolute, outside the root) → sha256 of each local module. */
  files: Record<string, string>;
  /** External specifiers (npm:…, node:…, mapped bare imports). */
  external: string[];
}

const IMPORT_PATTERNS = [
  /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*["']([^"'\n]+)["']/g,
  /\bimport\s*["']([^"'\n]+)["']/g,
  /\bimport\s*\(\s*["']([^"'\n]+)["']\s*(?:,[^)]*)?\)/g,
];

export function scanImports(source: string): string[] {
  const found = new Set<string>();
  for (const re of IMPORT_PATTERNS) {
    re.lastIndex = 0;
    for (const m of source.matchAll(re)) found.add(m[1]);
  }
  return [...found].sort();
}

interface ImportMap {
  imports: Record<string, string>;
}

const importMaps = new Map<string, ImportMap | null>();

function importMapFor(dir: string): ImportMap | null {
  if (importMaps.has(dir)) return importMaps.get(dir)!;
  let result: ImportMap | null = null;
  for (const name of ["deno.json", "deno.jsonc"]) {
    try {
      const text = Deno.readTextFileSync(join(dir, name));
      const cfg = JSON.parse(text.replace(/^\s*\/\/.*$/gm, ""));
      result = { imports: cfg.imports ?? {} };
      break;
    } catch {
      // not here
    }
  }
  if (!result) {
    const parent = dirname(dir);
    result = parent === dir ? null : importMapFor(parent);
  }
  importMaps.set(dir, result);
  return result;
}

function mapBare(spec: string, fromDir: string): string {
  const map = importMapFor(fromDir);
  if (!map) return spec;
  if (map.imports[spec]) return map.imports[spec];
  for (const [k, v] of Object.entries(map.imports)) {
    if (k.endsWith("/") && spec.startsWith(k)) return v + spec.slice(k.length);
    if (spec.startsWith(k + "/")) return `${v}${spec.slice(k.length)}`;
  }
  return spec;
}

const memos = new WeakMap<DigestCache, Map<string, CodeDigest>>();

/** Code digest of a module URL (file: only; other URLs contribute their URL). Memoised per digest cache (per run). */
export function codeDigest(moduleUrl: string, cache: DigestCache, root: string): CodeDigest {
  let memo = memos.get(cache);
  if (!memo) memos.set(cache, memo = new Map());
  const hit = memo.get(moduleUrl);
  if (hit) return hit;
  const files: Record<string, string> = {};
  const external = new Set<string>();
  const seen = new Set<string>();
  const stack: string[] = [];
  if (moduleUrl.startsWith("file:")) stack.push(fileURLToPath(moduleUrl));
  else external.add(moduleUrl);
  while (stack.length) {
    const path = stack.pop()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const rel = relative(root, path);
    const name = rel.startsWith("..") || rel === "" ? path : rel.split(sep).join("/");
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(path);
    } catch {
      files[name] = "missing";
      continue;
    }
    let sha: string;
    let imports: string[];
    const cached = cache.lookup(path, st);
    if (cached && cached.imports) {
      sha = cached.sha256;
      imports = cached.imports;
    } else {
      const hashedAt = Date.now();
      const bytes = Deno.readFileSync(path);
      sha = sha256Text(bytes);
      imports = /\.[cm]?[jt]sx?$/.test(path) ? scanImports(new TextDecoder().decode(bytes)) : [];
      cache.store(path, st, hashedAt, sha, { imports });
    }
    files[name] = sha;
    const dir = dirname(path);
    for (const spec of imports) {
      if (spec.startsWith("./") || spec.startsWith("../") || spec.startsWith("/")) {
        stack.push(spec.startsWith("/") ? spec : join(dir, spec));
      } else if (spec.startsWith("file:")) {
        stack.push(fileURLToPath(spec));
      } else if (spec.startsWith("node:")) {
        continue; // part of the Deno version, recorded in the environment
      } else {
        const mapped = spec.startsWith("npm:") || spec.includes("://") ? spec : mapBare(spec, dir);
        external.add(mapped);
      }
    }
  }
  const ext = [...external].sort();
  const result: CodeDigest = { digest: `sha256:${digestOf({ files, external: ext })}`, files, external: ext };
  memo.set(moduleUrl, result);
  return result;
}
