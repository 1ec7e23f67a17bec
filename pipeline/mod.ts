/**
 * The engine's public surface: load an experiment into a plan, run it, gc.
 * Imports only pipeline/ modules, npm:yaml and node:*, and nothing heavy.
 */
import { dirname, join, resolve } from "node:path";
import { loadExperimentAsync, useParseCache } from "./experiment.ts";
import { buildPlan, type Plan } from "./plan.ts";
import { getStageKind, type StageKind } from "./stage_kind.ts";

export { ExperimentError, formatLoc, loadExperiment, loadExperimentAsync, loadYaml } from "./experiment.ts";
export { buildPlan, type Instance, instanceId, type Plan } from "./plan.ts";
export { formatSeconds, type Outcome, type RunOptions, runPlan, type RunResult } from "./runner.ts";
export { Cache, defaultCacheDir, type EntryManifest, type KeyComponents, keyOf } from "./cache.ts";
export { gc, GcLockError, type GcOptions, type GcResult } from "./gc.ts";
export { formatSize } from "./disk.ts";
export { lockPath, readLock } from "./provenance.ts";

/**
 * Loads an experiment file (with `--set` overrides) and builds its plan against the registered kinds.
 * With `parseCache` (a JSON file, e.g. in the cache directory), unchanged YAML files are not re-parsed
 * and npm:yaml is not even loaded.
 */
export async function planExperiment(
  file: string,
  overrides: readonly string[] = [],
  opts: { getKind?: (name: string) => StageKind<unknown> | undefined; parseCache?: string } = {},
): Promise<Plan> {
  const getKind = opts.getKind ?? getStageKind;
  useParseCache(opts.parseCache);
  return buildPlan(await loadExperimentAsync(file, overrides, getKind), getKind);
}

/** The project root: the nearest directory from `start` up holding deno.json, else `start`. */
export function findRoot(start = Deno.cwd()): string {
  let dir = resolve(start);
  while (true) {
    try {
      Deno.statSync(join(dir, "deno.json"));
      return dir;
    } catch { /* keep looking */ }
    const parent = dirname(dir);
    if (parent === dir) return resolve(start);
    dir = parent;
  }
}
