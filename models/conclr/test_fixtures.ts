/**
 * Test-only helpers for the ConCLR parity tests: locate `../shared/fixtures`
 * (relative to the repository root), read fixture JSON and its tensors (inline
 * or safetensors references), and compare arrays.
 */
import { fileURLToPath } from "node:url";
import { readSafeTensors } from "../safetensors.ts";

/** `<repo>/../shared/fixtures`, or undefined (with a visible message) when absent. */
/** Whether ../shared/fixtures is there: parity tests are registered as ignored (visibly skipped) without it. */
export const HAVE_FIXTURES = (() => {
  try {
    return Deno.statSync(fileURLToPath(new URL("../../../shared/fixtures/", import.meta.url))).isDirectory;
  } catch {
    return false;
  }
})();

export function fixturesRoot(what: string): string | undefined {
  const dir = fileURLToPath(new URL("../../../shared/fixtures/", import.meta.url));
  try {
    if (Deno.statSync(dir).isDirectory) return dir;
  } catch {
    // absent
  }
  console.warn(`SKIP ${what}: fixtures folder ${dir} not found`);
  return undefined;
}

export interface FixtureTensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

type TensorSpec =
  | { shape: number[]; dtype: string; data: number[] }
  | { safetensors: string; key: string; shape: number[]; dtype: string };

/** Reads one tensor spec of a fixture JSON; `baseDir` is the JSON file's folder. */
export async function fixtureTensor(spec: TensorSpec, baseDir: string): Promise<FixtureTensor> {
  if ("data" in spec) {
    const data = spec.dtype === "float32" ? Float32Array.from(spec.data) : Int32Array.from(spec.data);
    return { shape: spec.shape, data };
  }
  const file = await readSafeTensors(`${baseDir}/${spec.safetensors}`);
  const t = file.tensors.get(spec.key);
  if (!t) throw new Error(`${baseDir}/${spec.safetensors}: no tensor "${spec.key}"`);
  if (JSON.stringify(t.shape) !== JSON.stringify(spec.shape)) {
    throw new Error(`${baseDir}/${spec.safetensors}: "${spec.key}" has shape [${t.shape}], JSON says [${spec.shape}]`);
  }
  return { shape: t.shape, data: t.data as Float32Array };
}

export async function readJson<T = Record<string, unknown>>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path)) as T;
}

/** Max |a - b| and whether every element satisfies |a - b| ≤ atol + rtol·|b|. */
export function compare(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
): { maxAbs: number; ok: boolean; worst: number } {
  if (actual.length !== expected.length) {
    throw new Error(`compare: length ${actual.length} vs expected ${expected.length}`);
  }
  let maxAbs = 0, ok = true, worst = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= atol + rtol * Math.abs(expected[i]))) {
      ok = false;
      if (worst < 0) worst = i;
    }
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
  }
  return { maxAbs, ok, worst };
}
