/**
 * Helpers for the engine's own tests: temporary projects, throwaway stage
 * kinds, in-process runs and CLI subprocesses.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadExperiment, loadYaml } from "./experiment.ts";

await loadYaml();
import { buildPlan, type Plan } from "./plan.ts";
import { type RunOptions, runPlan, type RunResult } from "./runner.ts";
import type { StageKind } from "./stage_kind.ts";

export const REPO = fileURLToPath(new URL("..", import.meta.url));
export const PIPELINE_URL = new URL(".", import.meta.url).href;

export function tempProject(): string {
  return Deno.makeTempDirSync({ prefix: "strata_test_" });
}

export function write(dir: string, rel: string, text: string): string {
  const p = join(dir, rel);
  Deno.mkdirSync(dirname(p), { recursive: true });
  Deno.writeTextFileSync(p, text);
  return p;
}

export function lookupIn(...list: StageKind<unknown>[]): (name: string) => StageKind<unknown> | undefined {
  const m = new Map(list.map((k) => [k.kind, k]));
  return (name) => m.get(name);
}

export function planOf(file: string, kinds: StageKind<unknown>[], set: string[] = []): Plan {
  const get = lookupIn(...kinds);
  return buildPlan(loadExperiment(file, set, get), get);
}

/** Runs an experiment in-process with output collected in `lines`. */
export async function runIn(
  root: string,
  file: string,
  kinds: StageKind<unknown>[],
  opts: Partial<RunOptions> & { set?: string[] } = {},
): Promise<RunResult & { lines: string[] }> {
  const lines: string[] = [];
  const result = await runPlan(planOf(join(root, file), kinds, opts.set ?? []), {
    root,
    // Never the user's $STRATA_CACHE: tests run gc.
    cacheDir: join(root, ".strata", "cache"),
    say: (l) => lines.push(l),
    ...opts,
  });
  return { ...result, lines };
}

export function stateOf(r: RunResult, id: string): string {
  const o = r.outcomes.find((o) => o.id === id);
  if (!o) throw new Error(`no outcome ${id}: ${r.outcomes.map((o) => o.id).join(", ")}`);
  return o.state;
}

export function keyOfStage(r: RunResult, id: string): string {
  const o = r.outcomes.find((o) => o.id === id);
  if (!o?.key) throw new Error(`no key for ${id}`);
  return o.key;
}

/** Runs `deno run -A cli/strata.ts ...args` in `cwd` with the given kind modules. */
export function cliCommand(cwd: string, args: string[], kindModules: string[], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", join(REPO, "deno.json"), join(REPO, "cli", "strata.ts"), ...args],
    cwd,
    // The test project's own cache, never an inherited $STRATA_CACHE (tests run gc).
    env: { STRATA_KINDS: kindModules.join(","), NO_COLOR: "1", STRATA_CACHE: join(cwd, ".strata", "cache"), ...env },
    stdout: "piped",
    stderr: "piped",
  });
}

export async function cli(
  cwd: string,
  args: string[],
  kindModules: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await cliCommand(cwd, args, kindModules, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
