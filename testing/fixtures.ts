/**
 * Reference-fixture loading for parity tests (`../shared/fixtures`, see its README).
 *
 * A fixture is a JSON file with `inputs`, `expected` and (for modules) `params`. Tensors are inline
 * (`{shape, dtype, data}`) or references into a safetensors file next to the JSON. Parameters are the
 * stored safetensors where `params.safetensors` names one, otherwise they are generated with fxgen-v1
 * from the manifest (`*.pe` buffers come from `abinet_common/positional_encoding.safetensors`).
 *
 * Everything here is in PyTorch layout (NCHW activations, OIHW conv weights) as the fixtures store it.
 */
import { hashString, mix32 } from "../models/nn/rng.ts";
import { fileURLToPath } from "node:url";
import { type NamedTensor, readSafeTensors, type SafeTensorsFile } from "../models/safetensors.ts";

/** `<repo>/../shared/fixtures`, resolved from this file. */
export const FIXTURES_DIR = fileURLToPath(new URL("../../shared/fixtures/", import.meta.url));

/** Whether a fixture file (path relative to the fixtures folder) exists. */
export function fixtureExists(relative: string): boolean {
  try {
    return Deno.statSync(`${FIXTURES_DIR}${relative}`).isFile;
  } catch {
    return false;
  }
}

/**
 * `Deno.test` options that skip (visibly) when the fixture is absent: the test is marked ignored and
 * a note goes to the console once per missing file.
 */
export function skipUnlessFixture(relative: string): boolean {
  const ok = fixtureExists(relative);
  if (!ok) console.log(`note: fixture ${FIXTURES_DIR}${relative} is absent; its parity test is skipped`);
  return !ok;
}

// ---------------------------------------------------------------------------------------------------------
// fxgen-v1

/** FNV-1a over the UTF-8 bytes of a tensor name (fxgen-v1's name hash). */
export const fnv1a32 = hashString;

/** The seed `s` of fxgen-v1 for a tensor name. */
export function fxgenSeed(name: string, baseSeed = 0): number {
  return mix32((fnv1a32(name) ^ baseSeed) >>> 0);
}

/** The raw hash `u_i` of fxgen-v1. */
export function fxgenHash(seed: number, i: number): number {
  return mix32((seed + Math.imul(i, 0x9e3779b9)) >>> 0);
}

/** fxgen-v1: element i = float32(offset + scale * q_i), q_i in [-1, 1) a multiple of 2^-23. */
export function fxgen(name: string, numel: number, offset: number, scale: number, baseSeed = 0): Float32Array {
  const s = fxgenSeed(name, baseSeed);
  const out = new Float32Array(numel);
  for (let i = 0; i < numel; i++) out[i] = offset + scale * (((fxgenHash(s, i) >>> 8) - 8388608) / 8388608);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Fixture JSON

export interface InlineTensor {
  shape: number[];
  dtype: "float32" | "int32" | "bool";
  data: number[];
}

export interface RefTensor {
  safetensors: string;
  key: string;
  shape: number[];
  dtype: "float32";
}

export interface ManifestEntry {
  name: string;
  shape: number[];
  torch_dtype: string;
  owner: string;
  generated: boolean;
  fxgen?: { offset: number; scale: number; base_seed: number };
  check?: { first4: number[]; sum_f64: number; abs_sum_f64: number };
  note?: string;
}

export interface FixtureJson {
  fixture: string;
  config: Record<string, unknown>;
  inputs: Record<string, InlineTensor | RefTensor>;
  expected: Record<string, InlineTensor | RefTensor>;
  params?: { safetensors?: string; manifest: ManifestEntry[]; num_parameters?: number };
  tolerance: { recommended: { atol: number; rtol: number } } & Record<string, unknown>;
}

export interface Fixture {
  /** Path of the JSON file. */
  path: string;
  json: FixtureJson;
  inputs: Map<string, NamedTensor>;
  expected: Map<string, NamedTensor>;
  /** The state_dict (float32, PyTorch names and layouts), stored or generated; empty when the fixture has none. */
  params(): Promise<Map<string, NamedTensor>>;
}

const numelOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Loads `relative` (e.g. `abinet_resnet/resnet45.json`) with its inputs and expected outputs. */
export async function loadFixture(relative: string): Promise<Fixture> {
  const path = `${FIXTURES_DIR}${relative}`;
  const dir = path.slice(0, path.lastIndexOf("/") + 1);
  const json = JSON.parse(await Deno.readTextFile(path)) as FixtureJson;
  const files = new Map<string, SafeTensorsFile>();
  const file = async (name: string) => {
    let f = files.get(name);
    if (!f) files.set(name, f = await readSafeTensors(`${dir}${name}`));
    return f;
  };
  const resolve = async (where: string, spec: InlineTensor | RefTensor): Promise<NamedTensor> => {
    if ("safetensors" in spec) {
      const t = (await file(spec.safetensors)).tensors.get(spec.key);
      if (!t) throw new Error(`${path}: ${where}: key "${spec.key}" missing from ${spec.safetensors}`);
      if (t.shape.join() !== spec.shape.join()) {
        throw new Error(`${path}: ${where}: shape [${t.shape}] in ${spec.safetensors}, [${spec.shape}] in the JSON`);
      }
      return t;
    }
    const data = spec.dtype === "float32" ? Float32Array.from(spec.data) : Int32Array.from(spec.data);
    if (data.length !== numelOf(spec.shape)) throw new Error(`${path}: ${where}: data does not match shape`);
    return { dtype: spec.dtype === "float32" ? "F32" : "I32", shape: spec.shape, data };
  };
  const inputs = new Map<string, NamedTensor>();
  for (const [k, v] of Object.entries(json.inputs)) inputs.set(k, await resolve(`inputs.${k}`, v));
  const expected = new Map<string, NamedTensor>();
  for (const [k, v] of Object.entries(json.expected)) expected.set(k, await resolve(`expected.${k}`, v));
  return {
    path,
    json,
    inputs,
    expected,
    params: async () => {
      if (!json.params) return new Map();
      if (json.params.safetensors) {
        const stored = (await file(json.params.safetensors)).tensors;
        // Keep manifest order and check that everything exportable is present.
        const out = new Map<string, NamedTensor>();
        for (const m of json.params.manifest) {
          if (m.torch_dtype !== "float32") continue;
          const t = stored.get(m.name);
          if (!t) throw new Error(`${path}: parameter "${m.name}" missing from ${json.params.safetensors}`);
          out.set(m.name, t);
        }
        return out;
      }
      return await generateParams(json.params.manifest, path);
    },
  };
}

let peTable: NamedTensor | undefined;

/** The stored PyTorch float32 sinusoidal table `[256, 512]`. */
export async function positionalEncodingTable(): Promise<NamedTensor> {
  if (!peTable) {
    const f = await readSafeTensors(`${FIXTURES_DIR}abinet_common/positional_encoding.safetensors`);
    peTable = f.tensors.get("pe");
    if (!peTable) throw new Error('abinet_common/positional_encoding.safetensors: no tensor "pe"');
  }
  return peTable;
}

/** Builds a state_dict from a manifest with fxgen-v1, verifying every entry's `check` values. */
export async function generateParams(
  manifest: ManifestEntry[],
  source = "manifest",
): Promise<Map<string, NamedTensor>> {
  const out = new Map<string, NamedTensor>();
  for (const m of manifest) {
    if (m.torch_dtype !== "float32") continue;
    const numel = numelOf(m.shape);
    if (m.name.endsWith(".pe") && !m.generated) {
      const table = await positionalEncodingTable();
      const [rows, , dim] = m.shape;
      if (m.shape.length !== 3 || m.shape[1] !== 1 || dim !== table.shape[1] || rows > table.shape[0]) {
        throw new Error(`${source}: ${m.name}: shape [${m.shape}] does not fit the stored table [${table.shape}]`);
      }
      out.set(m.name, { dtype: "F32", shape: m.shape, data: (table.data as Float32Array).slice(0, rows * dim) });
      continue;
    }
    if (!m.generated || !m.fxgen) throw new Error(`${source}: ${m.name} is neither generated nor a pe table`);
    const data = fxgen(m.name, numel, m.fxgen.offset, m.fxgen.scale, m.fxgen.base_seed);
    if (m.check) {
      const problem = checkValues(data, m.check);
      if (problem) throw new Error(`${source}: fxgen of ${m.name} fails its check: ${problem}`);
    }
    out.set(m.name, { dtype: "F32", shape: m.shape, data });
  }
  return out;
}

/** Compares generated values with a manifest `check`; returns a description of the mismatch or undefined. */
export function checkValues(
  data: Float32Array,
  check: { first4: number[]; sum_f64: number; abs_sum_f64: number },
): string | undefined {
  for (let i = 0; i < check.first4.length; i++) {
    if (data[i] !== Math.fround(check.first4[i])) return `first4[${i}] ${data[i]} ≠ ${check.first4[i]}`;
  }
  let sum = 0, abs = 0;
  for (const v of data) {
    sum += v;
    abs += Math.abs(v);
  }
  const tol = (ref: number) => 1e-9 * Math.max(1, Math.abs(ref));
  if (Math.abs(sum - check.sum_f64) > tol(check.sum_f64)) return `sum ${sum} ≠ ${check.sum_f64}`;
  if (Math.abs(abs - check.abs_sum_f64) > tol(check.abs_sum_f64)) return `abs sum ${abs} ≠ ${check.abs_sum_f64}`;
  return undefined;
}

/** NCHW float32 data → NHWC data (same NamedTensor form). */
export function nchwToNhwc(t: NamedTensor): NamedTensor {
  const [n, c, h, w] = t.shape;
  const src = t.data as Float32Array;
  const out = new Float32Array(src.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        const s = ((b * c + ch) * h + y) * w;
        const d = (b * h + y) * w * c + ch;
        for (let x = 0; x < w; x++) out[d + x * c] = src[s + x];
      }
    }
  }
  return { dtype: "F32", shape: [n, h, w, c], data: out };
}

/** Keeps the entries under `prefix` (e.g. `backbone.resnet.`), with the prefix removed. */
export function withoutPrefix(state: Map<string, NamedTensor>, prefix: string): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [k, v] of state) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

export interface Diff {
  maxAbs: number;
  maxExpected: number;
  /** Index of the largest difference. */
  at: number;
}

/** max |actual − expected| and max |expected|. Shapes must already agree in element count. */
export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): Diff {
  if (actual.length !== expected.length) {
    throw new Error(`element counts differ: ${actual.length} actual, ${expected.length} expected`);
  }
  let maxAbs = 0, maxExpected = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= maxAbs)) [maxAbs, at] = [d, i]; // NaN counts as the worst.
    maxExpected = Math.max(maxExpected, Math.abs(expected[i]));
  }
  return { maxAbs, maxExpected, at };
}

/** Throws unless max|diff| ≤ atol + rtol·max|expected| (the README's comparison); returns the diff. */
export function assertClose(
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol = 0,
): Diff {
  const d = maxAbsDiff(actual, expected);
  const limit = atol + rtol * d.maxExpected;
  if (!(d.maxAbs <= limit)) {
    throw new Error(
      `${what}: max |diff| ${d.maxAbs} at ${d.at} (got ${actual[d.at]}, want ${expected[d.at]}) > ${limit}`,
    );
  }
  return d;
}
