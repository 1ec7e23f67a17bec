/**
 * The provenance lock `results/<experiment>/strata.lock` (JSON): per stage
 * instance its key, key components, output digests, timings, summary and
 * environment fingerprint, plus the machine's environment. Also explains
 * why a stage is stale by comparing key components with the lock.
 */
import { join } from "node:path";
import type { InputComponent, KeyComponents, Timings } from "./cache.ts";
import { writeFileAtomic } from "./digest.ts";
import { canonicalJson } from "./hash.ts";

export interface StageRecord {
  stage: string;
  kind: string;
  key?: string;
  components?: KeyComponents;
  /** Per-module digests behind `components.code`. */
  code_files?: Record<string, string>;
  outputs?: Record<string, string>;
  timings?: Timings;
  summary?: Record<string, unknown>;
  notes?: string[];
  skipped?: string;
}

export interface LockFile {
  version: 1;
  experiment: string;
  file: string;
  environment: Record<string, string>;
  stages: Record<string, StageRecord>;
}

export function lockPath(root: string, experiment: string): string {
  return join(root, "results", experiment, "strata.lock");
}

export function readLock(path: string): LockFile | undefined {
  try {
    const data = JSON.parse(Deno.readTextFileSync(path));
    return data && typeof data.stages === "object" ? data : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the lock atomically; skipped when the content is unchanged. Returns whether it wrote. */
export function writeLock(path: string, lock: LockFile): boolean {
  const text = JSON.stringify(lock, null, 2) + "\n";
  try {
    if (Deno.readTextFileSync(path) === text) return false;
  } catch { /* absent */ }
  Deno.mkdirSync(path.replace(/[\\/][^\\/]*$/, ""), { recursive: true });
  writeFileAtomic(path, text);
  return true;
}

let envMemo: Record<string, string> | undefined;

/** Deno, OS, CPU model and the project's git commit (read from .git, no subprocess). */
export function machineEnvironment(root: string): Record<string, string> {
  if (envMemo) return envMemo;
  const env: Record<string, string> = {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: `${Deno.build.os} ${safe(() => Deno.osRelease())}`.trim(),
    arch: Deno.build.arch,
    cpu: cpuModel(),
  };
  const commit = gitCommit(root);
  if (commit) env.git_commit = commit;
  envMemo = env;
  return env;
}

function safe(f: () => string): string {
  try {
    return f();
  } catch {
    return "";
  }
}

function cpuModel(): string {
  if (Deno.build.os === "linux") {
    const text = safe(() => Deno.readTextFileSync("/proc/cpuinfo"));
    const m = /^model name\s*:\s*(.+)$/m.exec(text);
    const count = (text.match(/^processor\s*:/gm) ?? []).length;
    if (m) return `${m[1].trim()}${count ? ` ×${count}` : ""}`;
  }
  return `${Deno.build.arch} (model unknown)`;
}

function gitCommit(root: string): string | undefined {
  let dir = root;
  for (let i = 0; i < 20; i++) {
    const gitDir = join(dir, ".git");
    const head = safe(() => Deno.readTextFileSync(join(gitDir, "HEAD"))).trim();
    if (head) {
      if (!head.startsWith("ref: ")) return head;
      const ref = head.slice(5);
      const loose = safe(() => Deno.readTextFileSync(join(gitDir, ref))).trim();
      if (loose) return loose;
      const packed = safe(() => Deno.readTextFileSync(join(gitDir, "packed-refs")));
      const line = packed.split("\n").find((l) => l.endsWith(` ${ref}`));
      return line?.split(" ")[0];
    }
    const parent = dir.replace(/[\\/][^\\/]*$/, "");
    if (!parent || parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** Why `now` differs from the recorded stage (empty when the components are identical). */
export function explainChange(
  prev: StageRecord | undefined,
  now: KeyComponents,
  codeFiles: Record<string, string>,
): string[] {
  if (!prev || !prev.components) return ["never run"];
  const was = prev.components;
  const reasons: string[] = [];
  if (was.kind !== now.kind) reasons.push(`kind ${was.kind} → ${now.kind}`);
  if (was.version !== now.version) reasons.push(`kind version ${was.version} → ${now.version}`);
  const pd = diffValues(was.params, now.params, "params");
  if (pd.length) reasons.push(`params changed: ${pd.join(", ")}`);
  if (was.code !== now.code) {
    const old = prev.code_files ?? {};
    const changed = Object.keys({ ...old, ...codeFiles }).sort().filter((f) => old[f] !== codeFiles[f]).map((f) =>
      !(f in old) ? `${f} (added)` : !(f in codeFiles) ? `${f} (removed)` : f
    );
    reasons.push(`code changed${changed.length ? `: ${changed.join(", ")}` : " (external imports)"}`);
  }
  for (const name of Object.keys({ ...was.inputs, ...now.inputs }).sort()) {
    const a = was.inputs[name] ?? [];
    const b = now.inputs[name] ?? [];
    if (canonicalJson(a) === canonicalJson(b)) continue;
    reasons.push(`input ${name} changed: ${describeInputChange(a, b)}`);
  }
  const ed = diffValues(was.env, now.env, "env");
  if (ed.length) reasons.push(`environment changed: ${ed.join(", ")}`);
  const cd = diffValues(was.context ?? {}, now.context ?? {}, "context");
  if (cd.length) reasons.push(`experiment or stage id changed: ${cd.join(", ")}`);
  return reasons;
}

function describeInputChange(a: InputComponent[], b: InputComponent[]): string {
  const froms = (l: InputComponent[]) => l.map((x) => x.from).join(", ");
  if (a.length !== b.length || a.some((x, i) => x.from !== b[i].from)) return `was [${froms(a)}], now [${froms(b)}]`;
  const diffs = a.map((x, i) => [x, b[i]] as const).filter(([x, y]) => canonicalJson(x) !== canonicalJson(y)).map((
    [x, y],
  ) => `${x.from === "path" ? "external path" : x.from} ${x.digest !== y.digest ? "content" : "producer params"}`);
  return diffs.join(", ");
}

function diffValues(a: unknown, b: unknown, path: string): string[] {
  if (canonicalJson(a ?? null) === canonicalJson(b ?? null)) return [];
  const isMap = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (isMap(a) && isMap(b)) {
    const am = a as Record<string, unknown>;
    const bm = b as Record<string, unknown>;
    return Object.keys({ ...am, ...bm }).sort().flatMap((k) => diffValues(am[k], bm[k], `${path}.${k}`));
  }
  return [`${path}: ${short(a)} → ${short(b)}`];
}

function short(v: unknown): string {
  if (v === undefined) return "(unset)";
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}
