/**
 * Test helpers: a demo LMDB built from ../shared/data/demo (or, where shared/ is absent, from the same six
 * words rendered here, so the training tests never depend on shared data), and a minimal StageContext.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLmdb } from "../data/lmdb.ts";
import type { ResolvedInput, StageContext } from "../pipeline/stage_kind.ts";

export const DEMO_DIR = fileURLToPath(new URL("../../shared/data/demo/", import.meta.url));

/** Whether ../shared/data/demo is there (tests that are about that folder skip visibly without it). */
export const HAVE_DEMO = existsSync(join(DEMO_DIR, "labels.tsv"));

/** The labels of the shared demo images, rendered by `renderedDemo` when the folder is absent. */
const DEMO_WORDS = ["CHEWBACCA", "Chevron", "SALMON", "Verbandstoffe", "Kappa", "3rdAve"];

async function renderedDemo(): Promise<[Uint8Array, string][]> {
  const { loadFonts } = await import("../data/fonts.ts");
  const [face] = await loadFonts(["dejavu-sans"], { italic: false });
  const { createCanvas } = await import("@napi-rs/canvas");
  return DEMO_WORDS.map((word, i) => {
    const canvas = createCanvas(24 + 14 * word.length, 32);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = `rgb(${230 - 20 * i}, 230, 220)`;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "rgb(20, 20, 40)";
    ctx.font = `22px "${face.alias}"`;
    ctx.fillText(word, 8, 24);
    const bytes = i % 2 ? canvas.toBuffer("image/jpeg") : canvas.toBuffer("image/png");
    return [new Uint8Array(bytes), word];
  });
}

/** Writes the demo images (labels from labels.tsv) `repeat` times into a new LMDB at `path`. */
export async function makeDemoLmdb(path: string, repeat = 1): Promise<string[]> {
  let samples: [Uint8Array, string][];
  if (HAVE_DEMO) {
    const rows = (await Deno.readTextFile(join(DEMO_DIR, "labels.tsv"))).trim().split("\n").map((l) => l.split("\t"));
    samples = await Promise.all(rows.map(async ([file, label]) => [await Deno.readFile(join(DEMO_DIR, file)), label]));
  } else {
    samples = await renderedDemo();
  }
  const w = await createLmdb(path);
  for (let r = 0; r < repeat; r++) {
    for (const [image, label] of samples) w.add(image, label);
  }
  await w.commit();
  return samples.map((s) => s[1]);
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
