/**
 * Garbage collection: removes cache entries that no `results/<experiment>/strata.lock` references, the
 * temporary and scratch folders of runs that are over, and the private LMDB folders (`$TMPDIR/strata-lmdb-*`)
 * of processes that are gone. A lock it cannot read (or one that is not where its experiment's lock belongs)
 * stops gc: what it refers to is unknown, so nothing could be removed safely (`force` proceeds anyway).
 */
import { join } from "node:path";
import { Cache } from "./cache.ts";
import { diskUsage } from "./digest.ts";
import { displayPath } from "./experiment.ts";
import { isAlive, readOwner } from "./liveness.ts";

export interface GcResult {
  kept: number;
  removed: string[];
  bytesFreed: number;
  locks: string[];
  /** Locks that could not be used (with `force`), and other things worth saying. */
  warnings: string[];
}

export interface GcOptions {
  dryRun?: boolean;
  /** Collect even when some lock cannot be read (its entries are then unprotected). */
  force?: boolean;
  /** Where private LMDB folders are made (default the OS temp folder). */
  tmpDir?: string;
}

/** Locks gc cannot use: unreadable, malformed, or not the lock of the folder they are in. */
export class GcLockError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `gc: ${problems.length} lock file(s) cannot be used, so the cache entries they refer to are unknown; ` +
        `nothing was removed:\n${
          problems.map((p) => `  ${p}`).join("\n")
        }\nRepair or remove them (e.g. run the experiment again), or use --force to collect anyway.`,
    );
    this.name = "GcLockError";
  }
}

const KEY = /^[0-9a-f]{64}$/;

/** Why a parsed lock cannot be trusted to list its keys (undefined when fine). */
function lockProblem(data: unknown, folder: string): string | undefined {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return "not a strata lock (not a JSON object)";
  const l = data as Record<string, unknown>;
  if (l.version !== 1) return `unknown lock version ${JSON.stringify(l.version)}`;
  if (typeof l.experiment !== "string") return "no experiment name";
  if (l.experiment !== folder) return `foreign: it is the lock of experiment "${l.experiment}"`;
  if (!l.stages || typeof l.stages !== "object" || Array.isArray(l.stages)) return "no stages";
  for (const [id, rec] of Object.entries(l.stages as Record<string, unknown>)) {
    if (!rec || typeof rec !== "object") return `stage ${id}: not a record`;
    const key = (rec as Record<string, unknown>).key;
    if (key !== undefined && (typeof key !== "string" || !KEY.test(key))) return `stage ${id}: malformed key`;
  }
  return undefined;
}

/** Keys referenced by every `<root>/results/*\/strata.lock`, and the locks that could not be read. */
export function referencedKeys(root: string): { keys: Set<string>; locks: string[]; problems: string[] } {
  const keys = new Set<string>();
  const locks: string[] = [];
  const problems: string[] = [];
  let dirs: Deno.DirEntry[] = [];
  try {
    dirs = [...Deno.readDirSync(join(root, "results"))];
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      problems.push(`${displayPath(join(root, "results"))}: cannot list: ${(e as Error).message}`);
    }
  }
  for (const d of dirs) {
    if (!d.isDirectory) continue;
    const path = join(root, "results", d.name, "strata.lock");
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) problems.push(`${displayPath(path)}: ${(e as Error).message}`);
      continue;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      problems.push(`${displayPath(path)}: not valid JSON (truncated?): ${(e as Error).message}`);
      continue;
    }
    const bad = lockProblem(data, d.name);
    if (bad) {
      problems.push(`${displayPath(path)}: ${bad}`);
      continue;
    }
    locks.push(path);
    for (const rec of Object.values((data as { stages: Record<string, { key?: string }> }).stages)) {
      if (rec.key) keys.add(rec.key);
    }
  }
  return { keys, locks, problems };
}

/** Waits for running `strata run`s on this cache to finish (the cache's run lock), then collects. */
export async function gc(root: string, cacheDir: string, opts: GcOptions | boolean = {}): Promise<GcResult> {
  const o: GcOptions = typeof opts === "boolean" ? { dryRun: opts } : opts;
  // Read the locks first: a problem stops gc before it waits for running runs.
  const refs = referencedKeys(root);
  if (refs.problems.length && !o.force) throw new GcLockError(refs.problems);
  const cache = new Cache(cacheDir);
  const runLock = await cache.runLock(true);
  try {
    // Again, under the lock: a run may have rewritten a lock while we waited.
    const now = referencedKeys(root);
    if (now.problems.length && !o.force) throw new GcLockError(now.problems);
    return collect(now, cache, cacheDir, o);
  } finally {
    runLock.close();
  }
}

function collect(
  refs: { keys: Set<string>; locks: string[]; problems: string[] },
  cache: Cache,
  cacheDir: string,
  o: GcOptions,
): GcResult {
  const removed: string[] = [];
  const warnings = refs.problems.map((p) => `ignored (--force): ${p}`);
  let bytesFreed = 0;
  let kept = 0;
  const drop = (p: string, remove: () => void) => {
    let size = 0;
    try {
      size = diskUsage(p);
    } catch { /* vanished */ }
    if (!o.dryRun) {
      try {
        remove();
      } catch (e) {
        // E.g. another user's folder in the shared temp folder: said, not fatal.
        warnings.push(`could not remove ${displayPath(p)}: ${(e as Error).message}`);
        return;
      }
    }
    bytesFreed += size;
    removed.push(p);
  };
  for (const key of [...cache.entries()]) {
    if (refs.keys.has(key)) {
      kept++;
      continue;
    }
    drop(cache.entryDir(key), () => cache.remove(key));
  }
  // Temporary and scratch folders: with the run lock held exclusively no stage of any run on this cache is
  // running, so every one of them was left by a run that is over (killed, or stopped by a signal).
  for (const sub of ["tmp", "scratch"]) {
    const base = join(cacheDir, sub);
    let names: string[] = [];
    try {
      names = [...Deno.readDirSync(base)].map((e) => e.name);
    } catch { /* none */ }
    for (const n of names) drop(join(base, n), () => Deno.removeSync(join(base, n), { recursive: true }));
  }
  // Private LMDB folders are made by any strata process (run, stats, read), not only by runs on this cache:
  // only those of processes known to be gone are removed; without an owner record, once a day old.
  const tmp = o.tmpDir ?? tempDir();
  let names: string[] = [];
  try {
    // `.strata-lmdb-new-*`: one being made (it gets its owner record before its final name).
    names = [...Deno.readDirSync(tmp)].filter((e) =>
      e.isDirectory && (e.name.startsWith("strata-lmdb-") || e.name.startsWith(".strata-lmdb-new-"))
    ).map((e) => e.name);
  } catch { /* no temp dir */ }
  for (const n of names) {
    const dir = join(tmp, n);
    const owner = readOwner(dir);
    let stale: boolean;
    if (owner) stale = isAlive(owner) === false;
    else {
      try {
        stale = Date.now() - (Deno.statSync(dir).mtime?.getTime() ?? Date.now()) > 24 * 3600_000;
      } catch {
        stale = false;
      }
    }
    if (stale) drop(dir, () => Deno.removeSync(dir, { recursive: true }));
  }
  return { kept, removed, bytesFreed, locks: refs.locks, warnings };
}

/** The OS temp folder as node:os `tmpdir()` finds it (without loading node:os: start-up time). */
export function tempDir(): string {
  const env = Deno.build.os === "windows"
    ? Deno.env.get("TEMP") ?? Deno.env.get("TMP")
    : Deno.env.get("TMPDIR") ?? Deno.env.get("TMP") ?? Deno.env.get("TEMP");
  return (env ?? (Deno.build.os === "windows" ? "C:\\Windows\\Temp" : "/tmp")).replace(/(.)[\\/]+$/, "$1");
}
