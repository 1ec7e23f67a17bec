/**
 * Garbage collection: removes cache entries that no `results/<experiment>/strata.lock`
 * references, and temporary directories left by killed runs.
 */
import { join } from "node:path";
import { Cache } from "./cache.ts";
import { diskUsage } from "./digest.ts";
import { readLock } from "./provenance.ts";

export interface GcResult {
  kept: number;
  removed: string[];
  bytesFreed: number;
  locks: string[];
}

/** Keys referenced by every `<root>/results/*\/strata.lock`. */
export function referencedKeys(root: string): { keys: Set<string>; locks: string[] } {
  const keys = new Set<string>();
  const locks: string[] = [];
  let dirs: Deno.DirEntry[] = [];
  try {
    dirs = [...Deno.readDirSync(join(root, "results"))];
  } catch { /* no results yet */ }
  for (const d of dirs) {
    if (!d.isDirectory) continue;
    const path = join(root, "results", d.name, "strata.lock");
    const lock = readLock(path);
    if (!lock) continue;
    locks.push(path);
    for (const rec of Object.values(lock.stages)) if (rec.key) keys.add(rec.key);
  }
  return { keys, locks };
}

/** Waits for running `strata run`s on this cache to finish (the cache's run lock), then collects. */
export async function gc(root: string, cacheDir: string, dryRun: boolean): Promise<GcResult> {
  const cache = new Cache(cacheDir);
  const runLock = await cache.runLock(true);
  try {
    return collect(root, cache, cacheDir, dryRun);
  } finally {
    runLock.close();
  }
}

function collect(root: string, cache: Cache, cacheDir: string, dryRun: boolean): GcResult {
  const { keys, locks } = referencedKeys(root);
  const removed: string[] = [];
  let bytesFreed = 0;
  let kept = 0;
  for (const key of [...cache.entries()]) {
    if (keys.has(key)) {
      kept++;
      continue;
    }
    const dir = cache.entryDir(key);
    bytesFreed += diskUsage(dir);
    removed.push(dir);
    if (!dryRun) cache.remove(key);
  }
  // Temporary directories of killed attempts: with the run lock held exclusively no stage is running, so
  // every one of them is stale.
  const tmp = join(cacheDir, "tmp");
  try {
    for (const e of Deno.readDirSync(tmp)) {
      const p = join(tmp, e.name);
      bytesFreed += diskUsage(p);
      removed.push(p);
      if (!dryRun) Deno.removeSync(p, { recursive: true });
    }
  } catch { /* no tmp */ }
  return { kept, removed, bytesFreed, locks };
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
