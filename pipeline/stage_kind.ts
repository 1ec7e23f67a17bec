/**
 * The contract between the engine and the stage kinds.
 *
 * The engine knows nothing of scene text: a stage kind declares its params
 * schema, its named inputs and outputs, the module whose code (with the
 * project modules it imports) goes into the key, and an environment
 * fingerprint. Kinds register themselves with `registerStageKind`; the
 * engine never imports `tasks/` or `models/`.
 */
import type { ObjectSchema } from "./schema.ts";

export type Scalar = string | number | boolean;

export interface InputSpec {
  readonly description: string;
  /** The input may be left out (or its producer skipped); `ctx.inputs[name]` is then empty. */
  readonly optional?: boolean;
  /** The input takes several upstream outputs (fan-in over a matrix, or a list). */
  readonly many?: boolean;
}

export interface OutputSpec {
  readonly description: string;
  /** A single file, or a directory tree. Both are digested as content. */
  readonly type: "file" | "dir";
}

/** One upstream output delivered to a stage. */
export interface ResolvedInput {
  /** Absolute path of the file or directory, inside the cache (read-only by convention). */
  readonly path: string;
  /** Id of the producing stage instance (e.g. `train[model=abinet,seed=1]`), or `path:<p>` for external paths. */
  readonly stageId: string;
  /** Name of the output of that stage. */
  readonly output: string;
  /** The producing instance's matrix values ({} when it has no matrix). */
  readonly matrix: Readonly<Record<string, Scalar>>;
  /** The producing stage's kind and params after defaults ({} for external paths). */
  readonly kind: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** Content digest of the input. */
  readonly digest: string;
}

export interface StageContext<P> {
  /** Params after defaults and validation. */
  readonly params: P;
  /** Inputs by declared name; a list even for single inputs (use `input()` for those). */
  readonly inputs: Readonly<Record<string, readonly ResolvedInput[]>>;
  /** The single path of a non-`many` input; throws with the stage id if absent. */
  input(name: string): string;
  /** Like `input`, but undefined when an optional input is absent. */
  optionalInput(name: string): string | undefined;
  /** Where output `name` must be written: a path inside the stage's temporary directory. */
  output(name: string): string;
  /** The stage's temporary working directory (same file system as the cache). */
  readonly workDir: string;
  /** Stage instance id, experiment name and the experiment file's directory (for relative paths). */
  readonly stageId: string;
  readonly experiment: string;
  readonly experimentDir: string;
  /** Matrix values of this instance. */
  readonly matrix: Readonly<Record<string, Scalar>>;
  /** The cache entry directory of this key if a previous attempt left resumable state (see `scratch`). */
  readonly scratch: string;
  /** Appends a line to the stage log (streamed to stderr with --verbose). */
  log(message: string): void;
  /** One-line progress (e.g. a progress bar); shown on a TTY, throttled. */
  progress(message: string): void;
  /** Aborted when the run is interrupted; long loops should check it. */
  readonly signal: AbortSignal;
}

/**
 * What `run` may return: a JSON summary stored in the cache entry and lock
 * (counts of skipped samples, final metrics...), and notes shown to the user.
 */
export interface StageResult {
  summary?: Record<string, unknown>;
  notes?: string[];
}

export interface StageKind<P = Record<string, unknown>> {
  readonly kind: string;
  /** Bump to invalidate every cached output of this kind without a code change. */
  readonly version: number;
  readonly description: string;
  readonly params: ObjectSchema<P>;
  readonly inputs: Readonly<Record<string, InputSpec>>;
  readonly outputs: Readonly<Record<string, OutputSpec>>;
  /** `import.meta.url` of the kind's module; its code and its project imports go into the key. */
  readonly module: string;
  /**
   * The outputs embed the experiment name or the stage id (a report's title, say): they then go into the key,
   * so that two experiments whose stages are otherwise identical do not share this kind's entries.
   */
  readonly keyedByContext?: boolean;
  /** Exclusive resources (e.g. "accelerator"): two stages holding the same one never run together. */
  readonly resources?: readonly string[];
  /** Environment fingerprint that should invalidate outputs (library versions, backend...). */
  environment?(params: P): Promise<Record<string, string>> | Record<string, string>;
  /**
   * Skips the stage (with a visible note) instead of running it, e.g. when an
   * optional external data folder is absent. Dependents see the output as absent.
   */
  skip?(params: P, experimentDir: string): Promise<string | undefined> | string | undefined;
  run(ctx: StageContext<P>): Promise<StageResult | void>;
}

const registry = new Map<string, StageKind<unknown>>();

export function registerStageKind<P>(kind: StageKind<P>): StageKind<P> {
  const existing = registry.get(kind.kind);
  if (existing && existing.module !== kind.module) {
    throw new Error(`stage kind "${kind.kind}" is registered twice (${existing.module} and ${kind.module})`);
  }
  registry.set(kind.kind, kind as StageKind<unknown>);
  return kind;
}

export function getStageKind(name: string): StageKind<unknown> | undefined {
  return registry.get(name);
}

export function stageKinds(): StageKind<unknown>[] {
  return [...registry.values()].sort((a, b) => a.kind.localeCompare(b.kind));
}
