/**
 * Experiment files: YAML read with npm:yaml keeping every node's position, so
 * errors name file:line:column; `extends` deep-merging; `--set` overrides;
 * `${params.x}` / `${matrix.k}` interpolation.
 */
import type { Node } from "yaml";
import { writeFileAtomic } from "./digest.ts";
import { dirname, relative, resolve } from "node:path";
import { formatPath, type KeyPath, SchemaError } from "./schema.ts";
import type { StageKind } from "./stage_kind.ts";

export interface Loc {
  file: string;
  line: number;
  col: number;
}

export function formatLoc(loc: Loc | undefined): string {
  if (!loc) return "";
  if (loc.line === 0) return loc.file;
  return `${displayPath(loc.file)}:${loc.line}:${loc.col}`;
}

export function displayPath(file: string): string {
  if (file.startsWith("--")) return file;
  const rel = relative(Deno.cwd(), file);
  return rel.startsWith("../../") ? file : rel;
}

/** An error in an experiment file: the message starts with file:line:col when known. */
export class ExperimentError extends Error {
  constructor(message: string, readonly loc?: Loc) {
    super(loc ? `${formatLoc(loc)}: ${message}` : message);
    this.name = "ExperimentError";
  }
}

export const pathKey = (p: KeyPath): string => JSON.stringify(p);

/** Positions of values by key path (JSON of the path). */
export class Locations {
  readonly map = new Map<string, Loc>();
  set(path: KeyPath, loc: Loc): void {
    this.map.set(pathKey(path), loc);
  }
  /** Position of the value at `path`, or of its nearest located ancestor. */
  find(path: KeyPath): Loc | undefined {
    for (let n = path.length; n >= 0; n--) {
      const l = this.map.get(pathKey(path.slice(0, n)));
      if (l) return l;
    }
    return undefined;
  }
  /** Exact position only. */
  get(path: KeyPath): Loc | undefined {
    return this.map.get(pathKey(path));
  }
  /** Overlays `other` (which wins). */
  merge(other: Locations): void {
    for (const [k, v] of other.map) this.map.set(k, v);
  }
}

export type Tree = Record<string, unknown>;

export interface LoadedExperiment {
  /** Absolute path of the experiment file. */
  file: string;
  dir: string;
  name: string;
  description: string;
  /** Merged tree (after extends and overrides), before interpolation. */
  tree: Tree;
  locs: Locations;
}

/**
 * Documented limits on what an experiment file may ask for, so that a typo or a hostile file ends in a clear
 * error instead of exhausting memory: file size, values after alias expansion, alias expansions, and stage
 * instances (after matrix expansion, for the whole experiment; `$STRATA_MAX_INSTANCES` raises it).
 */
export const LIMITS = {
  yamlBytes: 1 << 20,
  yamlValues: 100_000,
  yamlAliases: 1_000,
  get instances(): number {
    const env = Number(Deno.env.get("STRATA_MAX_INSTANCES"));
    return Number.isSafeInteger(env) && env > 0 ? env : 1_000;
  },
};

type YamlModule = typeof import("yaml");
let yaml: YamlModule | undefined;

/** Loads npm:yaml (lazily: a cached rerun with an unchanged experiment file does not need it). */
export async function loadYaml(): Promise<void> {
  yaml ??= await import("yaml");
}

class NeedYaml extends Error {}

interface ParsedFile {
  dev: number;
  ino: number;
  size: number;
  mtime: number;
  value: unknown;
  locs: [string, Loc][];
}

/** Parsed experiment files keyed by path and (device, inode, size, mtime), persisted as JSON. */
const parseCache: { file?: string; entries: Record<string, ParsedFile>; dirty: boolean; loaded: boolean } = {
  entries: {},
  dirty: false,
  loaded: false,
};

/** Keeps parsed experiment files in `file` (e.g. in the cache directory); undefined turns it off. */
export function useParseCache(file: string | undefined): void {
  if (parseCache.file === file) return;
  Object.assign(parseCache, { file, entries: {}, dirty: false, loaded: false });
}

function saveParseCache(): void {
  if (!parseCache.file || !parseCache.dirty) return;
  parseCache.dirty = false;
  try {
    writeFileAtomic(parseCache.file, JSON.stringify({ version: 1, entries: parseCache.entries }));
  } catch { /* only costs time */ }
}

function parseYamlFile(file: string, locs: Locations): unknown {
  let st: Deno.FileInfo | undefined;
  if (parseCache.file) {
    if (!parseCache.loaded) {
      parseCache.loaded = true;
      try {
        const data = JSON.parse(Deno.readTextFileSync(parseCache.file));
        if (data?.version === 1) parseCache.entries = data.entries;
      } catch { /* absent */ }
    }
    try {
      st = Deno.statSync(file);
    } catch { /* reported below */ }
    const hit = parseCache.entries[file];
    if (
      st && hit && hit.dev === (st.dev ?? 0) && hit.ino === (st.ino ?? 0) && hit.size === st.size &&
      hit.mtime === (st.mtime?.getTime() ?? 0)
    ) {
      for (const [k, v] of hit.locs) locs.map.set(k, v);
      return structuredClone(hit.value);
    }
  }
  if (!yaml) throw new NeedYaml();
  const readAt = Date.now();
  const own = new Locations();
  const value = parseYamlText(file, own, yaml);
  locs.merge(own);
  // Same rule as file digests: a file modified within 2 s of reading is not trusted by stat.
  if (st && parseCache.file && readAt - (st.mtime?.getTime() ?? 0) >= 2000) {
    parseCache.entries[file] = {
      dev: st.dev ?? 0,
      ino: st.ino ?? 0,
      size: st.size,
      mtime: st.mtime?.getTime() ?? 0,
      value: structuredClone(value),
      locs: [...own.map],
    };
    parseCache.dirty = true;
  }
  return value;
}

function parseYamlText(file: string, locs: Locations, y: YamlModule): unknown {
  const { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } = y;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new ExperimentError(`cannot read experiment file ${displayPath(file)}: ${(e as Error).message}`);
  }
  if (text.length > LIMITS.yamlBytes) {
    throw new ExperimentError(
      `experiment file is ${text.length} bytes, more than the limit of ${LIMITS.yamlBytes}`,
      { file, line: 0, col: 0 },
    );
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length) {
    const err = doc.errors[0];
    const pos = err.linePos?.[0];
    const msg = err.message.split("\n")[0].replace(/ at line \d+, column \d+.*$/, "");
    throw new ExperimentError(`YAML: ${msg}`, pos ? { file, line: pos.line, col: pos.col } : { file, line: 0, col: 0 });
  }
  const at = (node: Node | null | undefined): Loc => {
    const off = node?.range?.[0] ?? 0;
    const p = lineCounter.linePos(off);
    return { file, line: p.line, col: p.col };
  };
  // Aliases are expanded here (not by npm:yaml), so their expansion is bounded here: an "alias bomb" (each
  // level referring to the previous one several times) would otherwise grow exponentially.
  let values = 0;
  let aliases = 0;
  const convert = (node: unknown, path: KeyPath, depth: number): unknown => {
    if (depth > 100) throw new ExperimentError("YAML nesting too deep (alias loop?)", at(node as Node));
    if (++values > LIMITS.yamlValues) {
      throw new ExperimentError(
        `YAML expands to more than ${LIMITS.yamlValues} values (aliases included); an experiment file is far smaller`,
        at(node as Node),
      );
    }
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      if (++aliases > LIMITS.yamlAliases) {
        throw new ExperimentError(`YAML: more than ${LIMITS.yamlAliases} alias expansions (*name)`, at(node as Node));
      }
      return convert(node.resolve(doc), path, depth + 1);
    }
    if (isScalar(node)) {
      locs.set(path, at(node));
      const v = node.value;
      return typeof v === "bigint" ? Number(v) : v;
    }
    if (isMap(node)) {
      locs.set(path, at(node));
      const out: Tree = {};
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const child = [...path, key];
        locs.set(child, at((pair.value as Node | null) ?? keyNode));
        out[key] = convert(pair.value, child, depth + 1);
        if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) locs.set(child, at(keyNode));
      }
      return out;
    }
    if (isSeq(node)) {
      locs.set(path, at(node));
      return node.items.map((item, i) => convert(item, [...path, i], depth + 1));
    }
    throw new ExperimentError("unsupported YAML node", at(node as Node));
  };
  return convert(doc.contents, [], 0);
}

export function isPlainMap(v: unknown): v is Tree {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Maps merge key by key; lists and scalars replace. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (isPlainMap(base) && isPlainMap(over)) {
    const out: Tree = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : v;
    return out;
  }
  return over;
}

function loadWithExtends(file: string, chain: string[]): { tree: Tree; locs: Locations } {
  if (chain.includes(file)) {
    const cycle = [...chain.slice(chain.indexOf(file)), file].map(displayPath).join(" → ");
    throw new ExperimentError(`extends cycle: ${cycle}`);
  }
  const locs = new Locations();
  const value = parseYamlFile(file, locs);
  if (value === null) return { tree: {}, locs };
  if (!isPlainMap(value)) throw new ExperimentError("an experiment file must be a map", locs.find([]));
  const ext = value.extends;
  if (ext === undefined || ext === null) return { tree: value, locs };
  const bases = typeof ext === "string" ? [ext] : Array.isArray(ext) ? ext : null;
  if (!bases || !bases.every((b) => typeof b === "string")) {
    throw new ExperimentError("extends: expected a file name or a list of file names", locs.find(["extends"]));
  }
  let tree: Tree = {};
  const merged = new Locations();
  for (const b of bases as string[]) {
    const basePath = resolve(dirname(file), b);
    try {
      Deno.statSync(basePath);
    } catch {
      throw new ExperimentError(`extends: ${displayPath(basePath)} does not exist`, locs.find(["extends"]));
    }
    const loaded = loadWithExtends(basePath, [...chain, file]);
    tree = deepMerge(tree, loaded.tree) as Tree;
    merged.merge(loaded.locs);
  }
  const own = { ...value };
  delete own.extends;
  tree = deepMerge(tree, own) as Tree;
  delete tree.extends;
  merged.merge(locs);
  return { tree, locs: merged };
}

const TOP_KEYS = ["name", "description", "extends", "params", "stages"];
export const STAGE_KEYS = ["kind", "description", "params", "inputs", "matrix", "publish"];

/**
 * Loads an experiment file with its bases and `--set` overrides (`a.b.c=value`).
 * Synchronous: needs `await loadYaml()` first unless every file is in the parse cache
 * (`loadExperimentAsync` does that).
 */
export function loadExperiment(
  path: string,
  overrides: readonly string[] = [],
  getKind: (name: string) => StageKind<unknown> | undefined = () => undefined,
): LoadedExperiment {
  const file = resolve(path);
  const { tree, locs } = loadWithExtends(file, []);
  saveParseCache();
  for (const key of Object.keys(tree)) {
    if (!TOP_KEYS.includes(key)) {
      throw new ExperimentError(`unknown key "${key}"; expected one of ${TOP_KEYS.join(", ")}`, locs.find([key]));
    }
  }
  for (const o of overrides) applyOverride(tree, locs, o, getKind);
  const name = tree.name ?? file.replace(/^.*[\\/]/, "").replace(/\.ya?ml$/, "");
  if (typeof name !== "string" || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new ExperimentError(
      `name: expected letters, digits, "_", "-" or ".", got ${JSON.stringify(name)}`,
      locs.find(["name"]),
    );
  }
  const description = tree.description ?? "";
  if (typeof description !== "string") {
    throw new ExperimentError("description: expected a string", locs.find(["description"]));
  }
  if (tree.params !== undefined && tree.params !== null && !isPlainMap(tree.params)) {
    throw new ExperimentError("params: expected a map", locs.find(["params"]));
  }
  tree.params = resolveParams((tree.params ?? {}) as Tree, locs);
  if (!isPlainMap(tree.stages)) {
    throw new ExperimentError("stages: expected a map of stage id → stage", locs.find(["stages"]));
  }
  for (const [id, stage] of Object.entries(tree.stages)) {
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(id)) {
      throw new ExperimentError(`stage id "${id}": expected letters, digits, "_" or "-"`, locs.find(["stages", id]));
    }
    if (!isPlainMap(stage)) throw new ExperimentError(`stages.${id}: expected a map`, locs.find(["stages", id]));
    for (const key of Object.keys(stage)) {
      if (!STAGE_KEYS.includes(key)) {
        throw new ExperimentError(
          `stages.${id}: unknown key "${key}"; expected one of ${STAGE_KEYS.join(", ")}`,
          locs.find(["stages", id, key]),
        );
      }
    }
  }
  return { file, dir: dirname(file), name, description, tree, locs };
}

/** `loadExperiment`, loading npm:yaml only when a file is not in the parse cache. */
export async function loadExperimentAsync(
  path: string,
  overrides: readonly string[] = [],
  getKind: (name: string) => StageKind<unknown> | undefined = () => undefined,
): Promise<LoadedExperiment> {
  try {
    return loadExperiment(path, overrides, getKind);
  } catch (e) {
    if (!(e instanceof NeedYaml)) throw e;
  }
  await loadYaml();
  return loadExperiment(path, overrides, getKind);
}

function applyOverride(
  tree: Tree,
  locs: Locations,
  text: string,
  getKind: (name: string) => StageKind<unknown> | undefined,
): void {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new ExperimentError(`--set ${text}: expected key.path=value`);
  const keyText = text.slice(0, eq).trim();
  const valueText = text.slice(eq + 1);
  const path: string[] = keyText.split(".");
  if (path.some((p) => p === "")) throw new ExperimentError(`--set ${text}: empty key in "${keyText}"`);
  const loc: Loc = { file: `--set ${keyText}`, line: 0, col: 0 };
  if (!TOP_KEYS.includes(path[0]) || path[0] === "extends") {
    throw new ExperimentError(`--set ${keyText}: expected a key under params, stages, name or description`);
  }
  let value: unknown;
  if (path[0] === "stages" && path.length >= 4 && path[2] === "params") {
    const stage = (tree.stages as Tree | undefined)?.[path[1]];
    if (!isPlainMap(stage)) {
      const known = isPlainMap(tree.stages) ? Object.keys(tree.stages).join(", ") : "(none)";
      throw new ExperimentError(`--set ${keyText}: no stage "${path[1]}"; stages: ${known}`);
    }
    const kind = typeof stage.kind === "string" ? getKind(stage.kind) : undefined;
    if (kind) {
      const sub = path.slice(3);
      const schema = kind.params.at(sub);
      if (!schema) {
        throw new ExperimentError(
          `--set ${keyText}: stage kind "${kind.kind}" has no param "${sub.join(".")}"; params: ${
            Object.keys(kind.params.fields).join(", ")
          }`,
        );
      }
      try {
        value = schema.fromString(valueText, sub);
      } catch (e) {
        if (e instanceof SchemaError) {
          throw new ExperimentError(`--set ${keyText}: expected ${e.expected}, got ${JSON.stringify(valueText)}`);
        }
        throw e;
      }
    } else value = parseScalar(valueText);
  } else if (path[0] === "params") {
    const existing = getAt(tree, path);
    value = typeof existing === "string" ? valueText : parseScalar(valueText);
  } else if (path[0] === "name" || path[0] === "description") {
    value = valueText;
  } else value = parseScalar(valueText);
  setAt(tree, path, value, keyText);
  locs.set(path, loc);
}

function parseScalar(text: string): unknown {
  const t = text.trim();
  if (t === "true") return true;
  if (t === "false") return false;
  if (t === "null") return null;
  if (t !== "" && !Number.isNaN(Number(t)) && /^[-+0-9.eE]+$/.test(t)) return Number(t);
  if (t.startsWith("[") || t.startsWith("{")) {
    try {
      return JSON.parse(t);
    } catch { /* plain string */ }
  }
  return text;
}

function getAt(tree: Tree, path: readonly string[]): unknown {
  let cur: unknown = tree;
  for (const p of path) {
    if (!isPlainMap(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function setAt(tree: Tree, path: readonly string[], value: unknown, keyText: string): void {
  let cur: Tree = tree;
  for (let i = 0; i < path.length - 1; i++) {
    const next = cur[path[i]];
    if (next === undefined || next === null) cur[path[i]] = {};
    else if (!isPlainMap(next)) {
      throw new ExperimentError(`--set ${keyText}: ${path.slice(0, i + 1).join(".")} is not a map`);
    }
    cur = cur[path[i]] as Tree;
  }
  cur[path[path.length - 1]] = value;
}

const REF = /\$\{\s*(params|matrix)\.([A-Za-z0-9_.-]+)\s*\}/g;
const WHOLE_REF = /^\$\{\s*(params|matrix)\.([A-Za-z0-9_.-]+)\s*\}$/;

export interface Scope {
  params: Tree;
  matrix?: Record<string, unknown>;
}

/** Replaces `${params.x}` / `${matrix.k}` in strings anywhere inside `value`. */
export function interpolate(value: unknown, scope: Scope, path: KeyPath, locs: Locations): unknown {
  if (typeof value === "string") {
    const whole = WHOLE_REF.exec(value);
    if (whole) return structuredClone(lookup(whole[1], whole[2], scope, path, locs, value));
    if (!value.includes("${")) return value;
    return value.replace(REF, (_m, ns: string, key: string) => {
      const v = lookup(ns, key, scope, path, locs, value);
      return typeof v === "string" ? v : JSON.stringify(v);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, scope, [...path, i], locs));
  if (isPlainMap(value)) {
    const out: Tree = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, scope, [...path, k], locs);
    return out;
  }
  return value;
}

function lookup(ns: string, key: string, scope: Scope, path: KeyPath, locs: Locations, text: string): unknown {
  const where = formatPath(path);
  if (ns === "matrix") {
    if (!scope.matrix) {
      throw new ExperimentError(`${where}: "${text}" refers to a matrix, but this stage has none`, locs.find(path));
    }
    if (!(key in scope.matrix)) {
      throw new ExperimentError(
        `${where}: "${text}": no matrix axis "${key}"; axes: ${Object.keys(scope.matrix).join(", ")}`,
        locs.find(path),
      );
    }
    return scope.matrix[key];
  }
  let cur: unknown = scope.params;
  for (const part of key.split(".")) {
    if (!isPlainMap(cur) || !(part in cur)) {
      throw new ExperimentError(
        `${where}: "${text}": no such param "${key}"; params: ${Object.keys(scope.params).join(", ") || "(none)"}`,
        locs.find(path),
      );
    }
    cur = cur[part];
  }
  return cur;
}

/** Lets top-level params refer to each other (`${params.a}` inside params). */
function resolveParams(params: Tree, locs: Locations): Tree {
  let cur = params;
  for (let i = 0; i < 10; i++) {
    const text = JSON.stringify(cur);
    if (!text.includes("${params.")) return cur;
    const next = interpolate(cur, { params: cur }, ["params"], locs) as Tree;
    if (JSON.stringify(next) === text) break;
    cur = next;
  }
  if (JSON.stringify(cur).includes("${params.")) {
    throw new ExperimentError("params: references between params form a cycle", locs.find(["params"]));
  }
  return cur;
}
