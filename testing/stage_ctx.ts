/**
 * A hand-made StageContext for tests of stage kinds: outputs go under
 * `<dir>/outputs/<name>` (directories for `dir` outputs are created first,
 * as the engine does), logs and progress lines are collected.
 */
import { join } from "node:path";
import type { ResolvedInput, StageContext, StageKind } from "../pipeline/stage_kind.ts";

export interface TestContext<P> extends StageContext<P> {
  logs: string[];
  progressLines: string[];
}

/** An input value for a test: a path (external-path style) or a full ResolvedInput. */
export type TestInput = string | ResolvedInput;

export function externalInput(path: string): ResolvedInput {
  return { path, stageId: `path:${path}`, output: "", matrix: {}, kind: "", params: {}, digest: "test" };
}

/**
 * Builds a context for `kind` with raw params (validated by the kind's
 * schema, defaults filled) and inputs by name.
 */
export async function stageContext<P>(
  kind: StageKind<P>,
  dir: string,
  rawParams: Record<string, unknown> = {},
  inputs: Record<string, TestInput | TestInput[]> = {},
  opts: { signal?: AbortSignal; experimentDir?: string } = {},
): Promise<TestContext<P>> {
  const params = kind.params.parse(rawParams, []);
  const outDir = join(dir, "outputs");
  await Deno.mkdir(outDir, { recursive: true });
  for (const [name, o] of Object.entries(kind.outputs)) {
    if (o.type === "dir") await Deno.mkdir(join(outDir, name), { recursive: true });
  }
  const scratch = join(dir, "scratch");
  await Deno.mkdir(scratch, { recursive: true });
  const resolvedInputs: Record<string, ResolvedInput[]> = {};
  for (const [name, v] of Object.entries(inputs)) {
    const list = Array.isArray(v) ? v : [v];
    resolvedInputs[name] = list.map((x) => typeof x === "string" ? externalInput(x) : x);
  }
  const logs: string[] = [];
  const progressLines: string[] = [];
  const ctx: TestContext<P> = {
    params,
    inputs: resolvedInputs,
    input(name) {
      const list = resolvedInputs[name] ?? [];
      if (list.length !== 1) throw new Error(`stage test: input "${name}" has ${list.length} values`);
      return list[0].path;
    },
    optionalInput(name) {
      const list = resolvedInputs[name] ?? [];
      return list.length ? ctx.input(name) : undefined;
    },
    output(name) {
      if (!(name in kind.outputs)) throw new Error(`stage test: kind ${kind.kind} has no output "${name}"`);
      return join(outDir, name);
    },
    workDir: dir,
    stageId: "test",
    experiment: "test",
    experimentDir: opts.experimentDir ?? dir,
    matrix: {},
    scratch,
    log: (m) => void logs.push(m),
    progress: (m) => void progressLines.push(m),
    signal: opts.signal ?? new AbortController().signal,
    logs,
    progressLines,
  };
  return ctx;
}
