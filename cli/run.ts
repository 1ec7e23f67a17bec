/**
 * `strata run <experiment.yaml>`: runs the experiment's stale stages into the
 * cache, publishes, and writes `results/<experiment>/strata.lock`.
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  defaultCacheDir,
  ExperimentError,
  findRoot,
  formatSeconds,
  type Outcome,
  planExperiment,
  runPlan,
  type RunResult,
} from "../pipeline/mod.ts";
import { SchemaError } from "../pipeline/schema.ts";

export const RUN_USAGE = `usage: strata run <experiment.yaml> [options]

Runs the experiment's stale stages (cached ones are reused), publishes the
stages that declare \`publish:\`, and writes results/<experiment>/strata.lock.

options:
  --only STAGE      run only this stage (name or instance id) and what it needs; repeatable
  --force STAGE     recompute this stage even if cached; repeatable
  --force-all       recompute every stage
  --dry-run         show which stages are fresh or stale, and why; run nothing
  --jobs N          run up to N independent stages at once (default 1)
  --set KEY=VALUE   override a value, e.g. --set stages.train.params.lr=3e-4 or
                    --set params.steps=100 (typed by the stage kind's schema); repeatable
  --verbose         stream stage logs to stderr
  --verify          re-hash cache entries before use; recompute corrupt ones
  --cache DIR       cache directory (default $STRATA_CACHE or .strata/cache)
  -h, --help        show this help

Stage kinds come from tasks/mod.ts, plus the modules listed in $STRATA_KINDS
(comma-separated paths or URLs).`;

/** Registers the stage kinds: tasks/mod.ts when it exists, then $STRATA_KINDS modules. */
export async function loadKinds(): Promise<void> {
  const tasks = new URL("../tasks/mod.ts", import.meta.url);
  let hasTasks = false;
  try {
    hasTasks = Deno.statSync(fileURLToPath(tasks)).isFile;
  } catch { /* not written yet */ }
  if (hasTasks) await importKinds(tasks.href, "tasks/mod.ts");
  for (const spec of (Deno.env.get("STRATA_KINDS") ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    await importKinds(/^[a-z]+:/.test(spec) ? spec : pathToFileURL(resolve(spec)).href, `$STRATA_KINDS entry ${spec}`);
  }
}

async function importKinds(url: string, what: string): Promise<void> {
  try {
    await import(url);
  } catch (e) {
    const msg = ((e as Error)?.message ?? String(e)).split("\n")[0];
    throw new KindModuleError(`cannot load the stage-kind module ${what}: ${msg}`);
  }
}

/** A stage-kind module that cannot be loaded. */
export class KindModuleError extends Error {
  override name = "KindModuleError";
}

/** The message of an error as one line (plus the stack with $STRATA_DEBUG=1, for bug reports). */
export function errorLine(e: unknown): string {
  const err = e as Error;
  if (Deno.env.get("STRATA_DEBUG")) return String(err?.stack ?? e);
  const msg = err?.message ?? String(e);
  return msg;
}

/** Prints an error from loading or running an experiment; returns the exit code. */
export function reportError(e: unknown): number {
  if (e instanceof ExperimentError || e instanceof SchemaError) {
    console.error(`strata: error: ${e.message}`);
    return 1;
  }
  if (e instanceof Error && /^no stage or instance/.test(e.message)) {
    console.error(`strata: error: ${e.message}`);
    return 2;
  }
  // No stack traces: the messages name the file or setting (STRATA_DEBUG=1 shows the stack).
  console.error(`strata: error: ${errorLine(e)}`);
  return 1;
}

export interface RunArgs {
  experiment: string;
  only: string[];
  force: string[];
  forceAll: boolean;
  dryRun: boolean;
  jobs: number;
  set: string[];
  verbose: boolean;
  verify: boolean;
  cache?: string;
}

/** Parses `run` options; returns a usage error string or the parsed options. */
export function parseRunArgs(args: string[]): RunArgs | string | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        only: { type: "string", multiple: true },
        force: { type: "string", multiple: true },
        "force-all": { type: "boolean" },
        "dry-run": { type: "boolean" },
        jobs: { type: "string", short: "j" },
        set: { type: "string", multiple: true },
        verbose: { type: "boolean", short: "v" },
        verify: { type: "boolean" },
        cache: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    return (e as Error).message;
  }
  const v = parsed.values;
  if (v.help) return "help";
  if (parsed.positionals.length !== 1) return "expected exactly one experiment file";
  const jobs = v.jobs === undefined ? 1 : Number(v.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) return `--jobs: expected an integer ≥ 1, got ${JSON.stringify(v.jobs)}`;
  return {
    experiment: parsed.positionals[0],
    only: v.only ?? [],
    force: v.force ?? [],
    forceAll: !!v["force-all"],
    dryRun: !!v["dry-run"],
    jobs,
    set: v.set ?? [],
    verbose: !!v.verbose,
    verify: !!v.verify,
    cache: v.cache,
  };
}

/** Prints the fresh/stale table of a dry run or `status` on stdout. */
export function printStatus(result: RunResult): void {
  const width = Math.max(...result.outcomes.map((o) => o.id.length), 5);
  for (const o of result.outcomes) {
    const label = o.state === "cached" ? "fresh" : o.state;
    const why = o.reasons.length ? `  ${o.reasons.join("; ")}` : "";
    console.log(`${label.padEnd(8)}${o.id.padEnd(width)}${why}`.trimEnd());
  }
}

export function summarise(result: RunResult): string {
  const count = (s: Outcome["state"]) => result.outcomes.filter((o) => o.state === s).length;
  const parts = [`${count("ran")} ran`, `${count("cached")} cached`];
  if (count("skipped")) parts.push(`${count("skipped")} skipped`);
  if (count("failed")) parts.push(`${count("failed")} failed`);
  if (count("blocked")) parts.push(`${count("blocked")} blocked`);
  return `strata: ${result.experiment}: ${parts.join(", ")} in ${formatSeconds(result.seconds)}`;
}

/** Runs an experiment per parsed options; returns the result (undefined after an error, with the exit code). */
export async function runExperiment(a: RunArgs): Promise<{ code: number; result?: RunResult }> {
  try {
    await loadKinds();
    const root = findRoot();
    const cacheDir = resolve(a.cache ?? defaultCacheDir(root));
    const plan = await planExperiment(a.experiment, a.set, { parseCache: join(cacheDir, "experiments.json") });
    const result = await runPlan(plan, {
      root,
      cacheDir,
      jobs: a.jobs,
      only: a.only,
      force: a.force,
      forceAll: a.forceAll,
      dryRun: a.dryRun,
      verbose: a.verbose,
      verify: a.verify,
    });
    if (a.dryRun) printStatus(result);
    else console.error(summarise(result));
    // Stopped by a signal: the shell's convention (128 + signal number).
    const code = result.interrupted ? (result.interrupted === "SIGTERM" ? 143 : 130) : result.ok ? 0 : 1;
    return { code, result };
  } catch (e) {
    return { code: reportError(e) };
  }
}

export async function main(args: string[]): Promise<number> {
  const a = parseRunArgs(args);
  if (a === "help") {
    console.log(RUN_USAGE);
    return 0;
  }
  if (typeof a === "string") {
    console.error(`strata run: ${a}\n\n${RUN_USAGE}`);
    return 2;
  }
  return (await runExperiment(a)).code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
