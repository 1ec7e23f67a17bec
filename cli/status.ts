/** `strata status <experiment.yaml>`: every stage fresh or stale, and why. */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { defaultCacheDir, findRoot, planExperiment, runPlan } from "../pipeline/mod.ts";
import { loadKinds, printStatus, reportError } from "./run.ts";

const USAGE = `usage: strata status <experiment.yaml> [--set KEY=VALUE]... [--cache DIR]

Shows each stage instance as fresh (its cache entry exists), stale (with the
reason: params diff, code files, which input, environment; compared with
results/<experiment>/strata.lock) or skipped. Runs nothing.

options:
  --set KEY=VALUE   override a value as \`run\` would; repeatable
  --cache DIR       cache directory (default $STRATA_CACHE or .strata/cache)
  -h, --help        show this help`;

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        set: { type: "string", multiple: true },
        cache: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`strata status: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(`strata status: expected exactly one experiment file\n\n${USAGE}`);
    return 2;
  }
  try {
    await loadKinds();
    const root = findRoot();
    const cacheDir = resolve(parsed.values.cache ?? defaultCacheDir(root));
    const plan = await planExperiment(parsed.positionals[0], parsed.values.set ?? [], {
      parseCache: join(cacheDir, "experiments.json"),
    });
    const result = await runPlan(plan, { root, cacheDir, dryRun: true });
    printStatus(result);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
