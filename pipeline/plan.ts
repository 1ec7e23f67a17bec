/**
 * From a loaded experiment to the DAG of stage instances: kinds looked up,
 * matrices expanded, params interpolated and validated, input references
 * resolved (matching matrix instances or fanning in), cycles reported.
 */
import { resolve } from "node:path";
import {
  ExperimentError,
  formatLoc,
  interpolate,
  isPlainMap,
  LIMITS,
  type LoadedExperiment,
  type Loc,
  type Locations,
  type Tree,
} from "./experiment.ts";
import { canonicalJson } from "./hash.ts";
import { formatPath, SchemaError } from "./schema.ts";
import { type Scalar, type StageKind, stageKinds } from "./stage_kind.ts";

export type InputRef =
  | { type: "stage"; stage: string; instance: string; output: string; optional: boolean; text: string }
  | { type: "path"; path: string; optional: boolean; text: string };

export interface Instance {
  /** `stage` or `stage[axis=value,…]`. */
  id: string;
  stage: string;
  kind: StageKind<unknown>;
  matrix: Record<string, Scalar>;
  /** Params after interpolation, validation and defaults. */
  params: Record<string, unknown>;
  /** Declared input name → references (after matrix matching; may be empty for optional inputs). */
  inputs: Record<string, InputRef[]>;
  /** Ids of producer instances. */
  deps: string[];
  /** Publish directory relative to the project root. */
  publish?: string;
  loc?: Loc;
}

export interface Plan {
  experiment: LoadedExperiment;
  /** Topological order (producers first), stable with respect to the file's stage order. */
  instances: Instance[];
  byId: Map<string, Instance>;
  byStage: Map<string, Instance[]>;
}

type Axes = [string, Scalar[]][];

export function instanceId(stage: string, matrix: Record<string, Scalar>): string {
  const entries = Object.entries(matrix);
  if (entries.length === 0) return stage;
  return `${stage}[${entries.map(([k, v]) => `${k}=${v}`).join(",")}]`;
}

export function buildPlan(exp: LoadedExperiment, getKind: (name: string) => StageKind<unknown> | undefined): Plan {
  const { tree, locs } = exp;
  const stages = tree.stages as Record<string, Tree>;
  const params = tree.params as Tree;
  const names = Object.keys(stages);

  // Kinds.
  const kinds = new Map<string, StageKind<unknown>>();
  for (const s of names) {
    const k = stages[s].kind;
    if (typeof k !== "string") {
      throw new ExperimentError(
        `stage "${s}": kind: expected the name of a stage kind`,
        locs.find(["stages", s, "kind"]),
      );
    }
    const kind = getKind(k);
    if (!kind) {
      throw new ExperimentError(
        `stage "${s}": unknown stage kind "${k}"${knownKinds(getKind)}`,
        locs.find(["stages", s, "kind"]),
      );
    }
    kinds.set(s, kind);
  }

  // Matrices.
  const axesMemo = new Map<string, Axes>();
  const axesOf = (s: string, chain: string[]): Axes => {
    const memo = axesMemo.get(s);
    if (memo) return memo;
    if (chain.includes(s)) {
      throw new ExperimentError(
        `matrix references form a cycle: ${[...chain, s].join(" → ")}`,
        locs.find(["stages", s, "matrix"]),
      );
    }
    const path = ["stages", s, "matrix"];
    const raw = interpolate(stages[s].matrix, { params }, path, locs);
    let axes: Axes;
    if (raw === undefined || raw === null) axes = [];
    else if (typeof raw === "string") {
      if (!(raw in stages)) {
        throw new ExperimentError(
          `stage "${s}": matrix: "${raw}" is not a stage (expected a map of axis → list, or a stage id)`,
          locs.find(path),
        );
      }
      axes = axesOf(raw, [...chain, s]);
    } else if (isPlainMap(raw)) {
      axes = Object.entries(raw).map(([axis, values]) => {
        const vals = Array.isArray(values) ? values : [values];
        if (vals.length === 0 || !vals.every((v) => ["string", "number", "boolean"].includes(typeof v))) {
          throw new ExperimentError(
            `stage "${s}": matrix.${axis}: expected a non-empty list of scalars`,
            locs.find([...path, axis]),
          );
        }
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(axis)) {
          throw new ExperimentError(`stage "${s}": matrix axis "${axis}": expected an identifier`, locs.find(path));
        }
        return [axis, vals as Scalar[]] as [string, Scalar[]];
      });
    } else {
      throw new ExperimentError(`stage "${s}": matrix: expected a map of axis → list, or a stage id`, locs.find(path));
    }
    axesMemo.set(s, axes);
    return axes;
  };

  // The number of instances, before making any (a matrix of 10^6 combinations must fail at once, not in minutes).
  let total = 0;
  for (const s of names) {
    const n = axesOf(s, []).reduce((acc, [, values]) => acc * values.length, 1);
    total += n;
    if (total > LIMITS.instances) {
      throw new ExperimentError(
        `stage "${s}": matrix expands to ${n} instances, making ${total} in the experiment, more than the limit ` +
          `of ${LIMITS.instances} ($STRATA_MAX_INSTANCES raises it)`,
        locs.find(["stages", s, "matrix"]) ?? locs.find(["stages", s]),
      );
    }
  }

  // Instances with params.
  const byStage = new Map<string, Instance[]>();
  const byId = new Map<string, Instance>();
  for (const s of names) {
    const kind = kinds.get(s)!;
    const combos = product(axesOf(s, []));
    const list: Instance[] = [];
    for (const matrix of combos) {
      const id = instanceId(s, matrix);
      const hasMatrix = Object.keys(matrix).length > 0;
      const scope = { params, matrix: hasMatrix ? matrix : undefined };
      const rawParams = interpolate(stages[s].params ?? {}, scope, ["stages", s, "params"], locs);
      let parsed: Record<string, unknown>;
      try {
        parsed = kind.params.parse(rawParams, []) as Record<string, unknown>;
      } catch (e) {
        if (!(e instanceof SchemaError)) throw e;
        const full = ["stages", s, "params", ...e.path];
        throw new ExperimentError(
          `stage "${id}" (kind ${kind.kind}): ${formatPath(full)}: expected ${e.expected}, got ${describe(e.got)}${
            referenceNote(stages[s].params, e.path, locs)
          }`,
          locs.find(full),
        );
      }
      const publishRaw = interpolate(stages[s].publish, scope, ["stages", s, "publish"], locs);
      if (publishRaw !== undefined && publishRaw !== null && (typeof publishRaw !== "string" || publishRaw === "")) {
        throw new ExperimentError(
          `stage "${s}": publish: expected a directory relative to the project root`,
          locs.find(["stages", s, "publish"]),
        );
      }
      const publish = publishDir(publishRaw as string | undefined, stages[s].publish, matrix);
      const bad = publish === undefined ? undefined : publishProblem(publish);
      if (bad) {
        throw new ExperimentError(
          `stage "${id}": publish: ${JSON.stringify(publish)} ${bad}; publish into a folder inside results/, ` +
            `relative to the project root (e.g. results/${exp.name})`,
          locs.find(["stages", s, "publish"]),
        );
      }
      const inst: Instance = {
        id,
        stage: s,
        kind,
        matrix,
        params: parsed,
        inputs: {},
        deps: [],
        publish,
        loc: locs.find(["stages", s]),
      };
      inst.inputs = {};
      if (byId.has(id)) {
        // Matrix values that print alike (1 and "1", or values holding `,` `=` `]`) would overwrite each other.
        throw new ExperimentError(`${formatLoc(inst.loc)}stage "${s}": two matrix instances share the id ${id}`);
      }
      list.push(inst);
      byId.set(id, inst);
    }
    byStage.set(s, list);
  }

  // Inputs.
  for (const s of names) {
    const kind = kinds.get(s)!;
    const base = ["stages", s, "inputs"];
    const declared = stages[s].inputs ?? {};
    if (!isPlainMap(declared)) {
      throw new ExperimentError(`stage "${s}": inputs: expected a map of input name → reference`, locs.find(base));
    }
    for (const name of Object.keys(declared)) {
      if (!(name in kind.inputs)) {
        throw new ExperimentError(
          `stage "${s}": kind "${kind.kind}" has no input "${name}"; inputs: ${
            Object.keys(kind.inputs).join(", ") || "(none)"
          }`,
          locs.find([...base, name]),
        );
      }
    }
    for (const inst of byStage.get(s)!) {
      const scope = { params, matrix: Object.keys(inst.matrix).length ? inst.matrix : undefined };
      const deps = new Set<string>();
      for (const [name, spec] of Object.entries(kind.inputs)) {
        const path = [...base, name];
        const raw = interpolate(declared[name], scope, path, locs);
        if (raw === undefined || raw === null) {
          if (!spec.optional) {
            throw new ExperimentError(
              `stage "${inst.id}": missing required input "${name}" (${spec.description})`,
              locs.find(base) ?? inst.loc,
            );
          }
          inst.inputs[name] = [];
          continue;
        }
        const texts = Array.isArray(raw) ? raw : [raw];
        const refs: InputRef[] = [];
        texts.forEach((t, i) => {
          const p = Array.isArray(raw) ? [...path, i] : path;
          if (typeof t !== "string") {
            throw new ExperimentError(
              `stage "${inst.id}": input "${name}": expected "stage.output" or "path:<file>", got ${describe(t)}`,
              locs.find(p),
            );
          }
          refs.push(...resolveRef(t, inst, name, p, stages, kinds, byStage, exp, locs));
        });
        if (!spec.many && refs.length > 1) {
          throw new ExperimentError(
            `stage "${inst.id}": input "${name}" takes one value, but ${
              texts.map((t) => JSON.stringify(t)).join(", ")
            } refer${texts.length === 1 ? "s" : ""} to ${refs.length} (${
              refs.map((r) => r.type === "stage" ? r.instance : r.text).join(", ")
            }); give the stage a matching matrix, or declare the input \`many\``,
            locs.find(path),
          );
        }
        for (const r of refs) if (r.type === "stage") deps.add(r.instance);
        inst.inputs[name] = refs;
      }
      inst.deps = [...deps];
    }
  }

  findCycle(names, byStage, byId, locs);
  return { experiment: exp, instances: topoSort(names, byStage, byId), byId, byStage };
}

function resolveRef(
  text: string,
  inst: Instance,
  input: string,
  path: (string | number)[],
  stages: Record<string, Tree>,
  kinds: Map<string, StageKind<unknown>>,
  byStage: Map<string, Instance[]>,
  exp: LoadedExperiment,
  locs: Locations,
): InputRef[] {
  let t = text.trim();
  const optional = t.endsWith("?");
  if (optional) t = t.slice(0, -1);
  const loc = locs.find(path);
  if (t.startsWith("path:")) {
    const rel = t.slice(5);
    if (!rel) throw new ExperimentError(`stage "${inst.id}": input "${input}": empty path`, loc);
    // Relative to the file that defined the reference (the experiment file or one of its bases).
    const fileDir = loc && loc.line > 0 ? loc.file.replace(/[\\/][^\\/]*$/, "") : exp.dir;
    return [{ type: "path", path: resolve(fileDir, rel), optional, text }];
  }
  const dot = t.indexOf(".");
  if (dot <= 0) {
    throw new ExperimentError(
      `stage "${inst.id}": input "${input}": "${text}" is neither "stage.output" nor "path:<file>"`,
      loc,
    );
  }
  const stage = t.slice(0, dot);
  const output = t.slice(dot + 1);
  if (!(stage in stages)) {
    throw new ExperimentError(
      `stage "${inst.id}": input "${input}" refers to unknown stage "${stage}"; stages: ${
        Object.keys(stages).join(", ")
      }`,
      loc,
    );
  }
  const pk = kinds.get(stage)!;
  if (!(output in pk.outputs)) {
    throw new ExperimentError(
      `stage "${inst.id}": input "${input}": stage "${stage}" (kind ${pk.kind}) has no output "${output}"; outputs: ${
        Object.keys(pk.outputs).join(", ")
      }`,
      loc,
    );
  }
  // Matrix matching: producer instances agreeing on every axis both share (all of them when none is shared).
  const producers = byStage.get(stage)!.filter((p) =>
    Object.entries(p.matrix).every(([axis, v]) =>
      !(axis in inst.matrix) || canonicalJson(inst.matrix[axis]) === canonicalJson(v)
    )
  );
  if (producers.length === 0) {
    throw new ExperimentError(
      `stage "${inst.id}": input "${input}": no instance of stage "${stage}" matches matrix ${
        JSON.stringify(inst.matrix)
      }`,
      loc,
    );
  }
  return producers.map((p) => ({ type: "stage", stage, instance: p.id, output, optional, text }));
}

function findCycle(
  names: string[],
  byStage: Map<string, Instance[]>,
  byId: Map<string, Instance>,
  locs: Locations,
): void {
  const edges = new Map<string, string[]>();
  for (const s of names) {
    const deps = new Set<string>();
    for (const inst of byStage.get(s)!) for (const d of inst.deps) deps.add(byId.get(d)!.stage);
    edges.set(s, [...deps]);
  }
  const state = new Map<string, number>(); // 1 = on stack, 2 = done
  const stack: string[] = [];
  const visit = (s: string): void => {
    state.set(s, 1);
    stack.push(s);
    for (const d of edges.get(s)!) {
      if (state.get(d) === 1) {
        const cycle = [...stack.slice(stack.indexOf(d)), d];
        // Show it in data-flow order: producer → consumer.
        cycle.reverse();
        throw new ExperimentError(
          `stages form a cycle: ${cycle.join(" → ")}`,
          locs.find(["stages", d, "inputs"]) ?? locs.find(["stages", d]),
        );
      }
      if (!state.get(d)) visit(d);
    }
    stack.pop();
    state.set(s, 2);
  };
  for (const s of names) if (!state.get(s)) visit(s);
}

function topoSort(names: string[], byStage: Map<string, Instance[]>, byId: Map<string, Instance>): Instance[] {
  const out: Instance[] = [];
  const done = new Set<string>();
  const visit = (inst: Instance): void => {
    if (done.has(inst.id)) return;
    done.add(inst.id);
    for (const d of inst.deps) visit(byId.get(d)!);
    out.push(inst);
  };
  for (const s of names) for (const inst of byStage.get(s)!) visit(inst);
  return out;
}

function product(axes: Axes): Record<string, Scalar>[] {
  let combos: Record<string, Scalar>[] = [{}];
  for (const [axis, values] of axes) {
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [axis]: v })));
  }
  return combos;
}

function knownKinds(getKind: (name: string) => StageKind<unknown> | undefined): string {
  const known = stageKinds().map((k) => k.kind).filter((k) => getKind(k));
  return known.length ? `; known kinds: ${known.join(", ")}` : "; no stage kinds are registered";
}

/**
 * Why a `publish` value is refused (undefined when fine): it must name a folder strictly inside `results/`, as a
 * relative path without `.`/`..` segments, so that a report can never overwrite project files or leave the project.
 */
export function publishProblem(value: string): string | undefined {
  if (value.includes("\\")) return "contains a backslash";
  if (value.startsWith("/") || /^[A-Za-z]:/.test(value)) return "is an absolute path";
  const parts = value.replace(/\/+$/, "").split("/");
  if (parts.some((p) => p === ".." || p === "." || p === "")) return "has empty, . or .. segments";
  if (parts[0] !== "results" || parts.length < 2) return "is not inside results/";
  return undefined;
}

/**
 * The publish directory of an instance: a matrix stage whose `publish` does not use `${matrix.…}`
 * publishes each instance into its own subdirectory (`<publish>/axis=value,…`).
 */
function publishDir(value: string | undefined, raw: unknown, matrix: Record<string, Scalar>): string | undefined {
  if (!value) return undefined;
  const entries = Object.entries(matrix);
  if (entries.length === 0 || (typeof raw === "string" && raw.includes("${matrix."))) return value;
  return `${value.replace(/\/+$/, "")}/${entries.map(([k, v]) => `${k}=${v}`).join(",")}`;
}

/** When the offending value came from `${params.x}`, says where that param was set. */
function referenceNote(raw: unknown, path: readonly (string | number)[], locs: Locations): string {
  let cur = raw;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return "";
    cur = (cur as Record<string, unknown>)[p as string];
  }
  if (typeof cur !== "string") return "";
  const m = /\$\{\s*params\.([A-Za-z0-9_.-]+)\s*\}/.exec(cur);
  if (!m) return "";
  const loc = locs.find(["params", ...m[1].split(".")]);
  return ` (from "${cur}"${loc ? `, params.${m[1]} set at ${formatLoc(loc)}` : ""})`;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  return `${typeof v} ${JSON.stringify(v)}`;
}
