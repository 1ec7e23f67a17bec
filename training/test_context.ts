/** Test helpers: a demo LMDB built from ../shared/data/demo, and a minimal StageContext. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLmdb } from "../data/lmdb.ts";
import type { ResolvedInput, StageContext } from "../pipeline/stage_kind.ts";

export const DEMO_DIR = fileURLToPath(new URL("../../shared/data/demo/", import.meta.url));

/** Writes the demo images (labels from labels.tsv) `repeat` times into a new LMDB at `path`. */
export async function makeDemoLmdb(path: string, repeat = 1): Promise<string[]> {
  const rows = (await Deno.readTextFile(join(DEMO_DIR, "labels.tsv"))).trim().split("\n").map((l) => l.split("\t"));
  const w = await createLmdb(path);
  for (let r = 0; r < repeat; r++) {
    for (const [file, label] of rows) w.add(await Deno.readFile(join(DEMO_DIR, file)), label);
  }
  await w.commit();
  return rows.map((r) => r[1]);
}

export function resolved(path: string, stageId: string, params: Record<string, unknown> = {}): ResolvedInput {
  return { path, stageId, output: "lmdb", matrix: {}, kind: "import", params, digest: "test" };
}

export interface FakeContextOptions<P> {
  params: P;
  inputs: Record<string, ResolvedInput[]>;
  workDir: string;
  scratch: string;
  signal?: AbortSignal;
  progress?: (m: string) => void;
  stageId?: string;
}

export function fakeContext<P>(o: FakeContextOptions<P>): StageContext<P> & { logs: string[] } {
  const logs: string[] = [];
  return {
    params: o.params,
    inputs: o.inputs,
    input(name) {
      const list = o.inputs[name] ?? [];
      if (list.length !== 1) throw new Error(`input ${name}: expected one, got ${list.length}`);
      return list[0].path;
    },
    optionalInput(name) {
      return o.inputs[name]?.[0]?.path;
    },
    output: (name) => join(o.workDir, "outputs", name),
    workDir: o.workDir,
    stageId: o.stageId ?? "test",
    experiment: "test",
    experimentDir: o.workDir,
    matrix: {},
    scratch: o.scratch,
    log: (m) => void logs.push(m),
    progress: o.progress ?? (() => {}),
    signal: o.signal ?? new AbortController().signal,
    logs,
  };
}
