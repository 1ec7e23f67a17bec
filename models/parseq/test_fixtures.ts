/**
 * Test-only helpers for the PARSeq parity tests (`../shared/fixtures/parseq`, fixtures README §3.5–3.6):
 * JSON with inline or safetensors-referenced tensors, the small reference config, and a model loaded with
 * the fixture's parameters.
 */
import { fixtureExists, FIXTURES_DIR } from "../../testing/fixtures.ts";
import { readSafeTensors, type SafeTensorsFile } from "../safetensors.ts";
import { resolveConfig } from "./config.ts";
import { ParseqModel } from "./mod.ts";
import type { PermutationRandom } from "./permutations.ts";

export const DIR = `${FIXTURES_DIR}parseq/`;

/** `Deno.test` `ignore` value: true (with a visible note) when the fixture file is absent. */
export function skipUnless(file: string): boolean {
  const ok = fixtureExists(`parseq/${file}`);
  if (!ok) console.log(`note: fixture ${DIR}${file} is absent; its PARSeq parity test is skipped`);
  return !ok;
}

export interface Tensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

type Spec =
  | { shape: number[]; dtype: string; data: number[] }
  | { safetensors: string; key: string; shape: number[]; dtype: string };

const files = new Map<string, SafeTensorsFile>();

export async function safetensors(name: string): Promise<SafeTensorsFile> {
  let f = files.get(name);
  if (!f) files.set(name, f = await readSafeTensors(`${DIR}${name}`));
  return f;
}

/** An inline or referenced tensor of a fixture JSON. */
export async function tensor(spec: Spec): Promise<Tensor> {
  if ("data" in spec) {
    return {
      shape: spec.shape,
      data: spec.dtype === "float32" ? Float32Array.from(spec.data) : Int32Array.from(spec.data),
    };
  }
  const t = (await safetensors(spec.safetensors)).tensors.get(spec.key);
  if (!t) throw new Error(`${DIR}${spec.safetensors}: no tensor "${spec.key}"`);
  if (t.shape.join() !== spec.shape.join()) throw new Error(`${DIR}${spec.safetensors}: "${spec.key}" shape differs`);
  return { shape: t.shape, data: t.data as Float32Array };
}

// deno-lint-ignore no-explicit-any
export async function json(file: string): Promise<any> {
  return JSON.parse(await Deno.readTextFile(`${DIR}${file}`));
}

/** The fixtures' config (README §3.6) as a `parseq` config: the `micro` preset, dropout 0. */
export const FIXTURE_CONFIG = resolveConfig({ preset: "micro", dropout: 0 });

/** A model with the fixture's parameters (`model.params.safetensors` or the `_dec2` variant). */
export async function fixtureModel(decDepth: 1 | 2 = 1): Promise<ParseqModel> {
  const model = new ParseqModel({ ...FIXTURE_CONFIG, dec_depth: decDepth }, 0, 37);
  const file = decDepth === 1 ? "model.params.safetensors" : "model_dec2.params.safetensors";
  model.loadState((await safetensors(file)).tensors, { source: file });
  return model;
}

/** Replays recorded `rng.choice` / `torch.randperm` draws in order; running out is an error. */
export function replay(
  draws: { "rng.choice": { result: number[] }[]; "torch.randperm": number[][] },
): PermutationRandom {
  const choices = [...draws["rng.choice"]];
  const perms = [...draws["torch.randperm"]];
  return {
    choice(n, size) {
      const d = choices.shift();
      if (!d || d.result.length !== size || d.result.some((v) => v >= n)) {
        throw new Error(`replay: unexpected rng.choice(${n}, size=${size})`);
      }
      return d.result;
    },
    randperm(n) {
      const d = perms.shift();
      if (!d || d.length !== n) throw new Error(`replay: unexpected randperm(${n})`);
      return d;
    },
  };
}

/** max |a − b| and the check `max|diff| ≤ atol + rtol · max|expected|` (the fixtures' per-tensor rule). */
export function close(
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
): number {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  }
  let maxAbs = 0, maxExp = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
    maxExp = Math.max(maxExp, Math.abs(expected[i]));
  }
  if (!(maxAbs <= atol + rtol * maxExp)) {
    throw new Error(`${what}: max |diff| ${maxAbs.toExponential(3)} > ${atol} + ${rtol}·${maxExp.toPrecision(4)}`);
  }
  return maxAbs;
}
