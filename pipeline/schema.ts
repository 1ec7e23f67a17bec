/**
 * Params schemas for stage kinds: typed defaults, validation with key paths,
 * and parsing of command-line override strings.
 *
 * Unknown object keys are errors so that a typo never silently falls back to
 * a default. Errors carry the key path; the experiment loader maps that path
 * to the file, line and column of the YAML node.
 */

export type KeyPath = readonly (string | number)[];

export class SchemaError extends Error {
  constructor(readonly path: KeyPath, readonly expected: string, readonly got: unknown) {
    super(`${formatPath(path)}: expected ${expected}, got ${describeValue(got)}`);
    this.name = "SchemaError";
  }
}

export function formatPath(path: KeyPath): string {
  if (path.length === 0) return "(root)";
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`).join("");
}

function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return `a list (${JSON.stringify(v).slice(0, 60)})`;
  if (typeof v === "object") return "a map";
  return `${typeof v} ${JSON.stringify(v)}`;
}

export interface Schema<T> {
  /** A short human description of accepted values, e.g. "integer ≥ 1". */
  readonly expected: string;
  readonly description?: string;
  /** Whether the key may be omitted (it then takes `defaultValue`, which may be undefined). */
  readonly optional: boolean;
  readonly defaultValue?: T;
  /** Validates a value (already YAML-parsed) and fills defaults. */
  parse(value: unknown, path: KeyPath): T;
  /** Parses a command-line string (`--set key=value`) into a value of this type. */
  fromString(text: string, path: KeyPath): T;
  /** JSON-able description for `--help` and docs. */
  describe(): Record<string, unknown>;
}

interface Common<T> {
  description?: string;
  default?: T;
  optional?: boolean;
}

function base<T>(
  expected: string,
  opts: Common<T>,
  parse: (v: unknown, path: KeyPath) => T,
  fromString: (s: string, path: KeyPath) => T,
  extra: Record<string, unknown> = {},
): Schema<T> {
  const hasDefault = opts.default !== undefined;
  return {
    expected,
    description: opts.description,
    optional: hasDefault || !!opts.optional,
    defaultValue: opts.default,
    parse(v, path) {
      if (v === undefined) {
        if (hasDefault) return structuredClone(opts.default) as T;
        if (opts.optional) return undefined as T;
        throw new SchemaError(path, `${expected} (required)`, v);
      }
      return parse(v, path);
    },
    fromString,
    describe: () => ({
      type: expected,
      ...(opts.description ? { description: opts.description } : {}),
      ...(hasDefault ? { default: opts.default } : {}),
      ...(opts.optional ? { optional: true } : {}),
      ...extra,
    }),
  };
}

export interface NumberOptions extends Common<number> {
  min?: number;
  max?: number;
  integer?: boolean;
}

export function number(opts: NumberOptions = {}): Schema<number> {
  const parts = [opts.integer ? "integer" : "number"];
  if (opts.min !== undefined) parts.push(`≥ ${opts.min}`);
  if (opts.max !== undefined) parts.push(`≤ ${opts.max}`);
  const expected = parts.join(" ");
  const check = (v: unknown, path: KeyPath): number => {
    if (typeof v !== "number" || !Number.isFinite(v)) throw new SchemaError(path, expected, v);
    // Beyond 2^53 integers are not exact (1e300 is an "integer" to JavaScript): refused.
    if (opts.integer && !Number.isSafeInteger(v)) throw new SchemaError(path, expected, v);
    if (opts.min !== undefined && v < opts.min) throw new SchemaError(path, expected, v);
    if (opts.max !== undefined && v > opts.max) throw new SchemaError(path, expected, v);
    // Normalise -0 so that canonical forms (and keys) agree.
    return v === 0 ? 0 : v;
  };
  return base(expected, opts, check, (s, path) => {
    const t = s.trim();
    const n = t === "" ? NaN : Number(t);
    if (Number.isNaN(n)) throw new SchemaError(path, expected, s);
    return check(n, path);
  }, { min: opts.min, max: opts.max });
}

export function integer(opts: Omit<NumberOptions, "integer"> = {}): Schema<number> {
  return number({ ...opts, integer: true });
}

export interface StringOptions<T extends string> extends Common<T> {
  enum?: readonly T[];
  pattern?: RegExp;
  minLength?: number;
}

export function string<T extends string = string>(opts: StringOptions<T> = {}): Schema<T> {
  const expected = opts.enum
    ? `one of ${opts.enum.map((e) => JSON.stringify(e)).join(", ")}`
    : opts.pattern
    ? `string matching ${opts.pattern}`
    : "string";
  const check = (v: unknown, path: KeyPath): T => {
    if (typeof v !== "string") throw new SchemaError(path, expected, v);
    if (opts.enum && !opts.enum.includes(v as T)) throw new SchemaError(path, expected, v);
    if (opts.pattern && !opts.pattern.test(v)) throw new SchemaError(path, expected, v);
    if (opts.minLength !== undefined && v.length < opts.minLength) {
      throw new SchemaError(path, `${expected} of at least ${opts.minLength} characters`, v);
    }
    return v as T;
  };
  return base(expected, opts, check, (s, path) => check(s, path), {
    ...(opts.enum ? { enum: opts.enum } : {}),
  });
}

export function boolean(opts: Common<boolean> = {}): Schema<boolean> {
  const check = (v: unknown, path: KeyPath): boolean => {
    if (typeof v !== "boolean") throw new SchemaError(path, "true or false", v);
    return v;
  };
  return base("boolean", opts, check, (s, path) => {
    if (s === "true") return true;
    if (s === "false") return false;
    throw new SchemaError(path, "true or false", s);
  });
}

export interface ArrayOptions<T> extends Common<T[]> {
  minItems?: number;
  maxItems?: number;
}

export function array<T>(item: Schema<T>, opts: ArrayOptions<T> = {}): Schema<T[]> {
  const expected = `list of ${item.expected}`;
  const check = (v: unknown, path: KeyPath): T[] => {
    if (!Array.isArray(v)) throw new SchemaError(path, expected, v);
    if (opts.minItems !== undefined && v.length < opts.minItems) {
      throw new SchemaError(path, `${expected} with at least ${opts.minItems} items`, v);
    }
    if (opts.maxItems !== undefined && v.length > opts.maxItems) {
      throw new SchemaError(path, `${expected} with at most ${opts.maxItems} items`, v);
    }
    return v.map((x, i) => item.parse(x, [...path, i]));
  };
  return base(expected, opts, check, (s, path) => {
    // `--set a.b=[1,2]` or `--set a.b=1,2`.
    let raw: unknown;
    try {
      raw = JSON.parse(s);
    } catch {
      raw = s.split(",").map((x, i) => item.fromString(x, [...path, i]));
      return check(raw, path);
    }
    return check(raw, path);
  }, { items: item.describe() });
}

export type Shape = Record<string, Schema<unknown>>;
export type Infer<S extends Shape> = { [K in keyof S]: S[K] extends Schema<infer T> ? T : never };

export interface ObjectSchema<T> extends Schema<T> {
  readonly fields: Shape;
  /** The schema at a key path inside this object, for typing `--set` overrides. */
  at(path: KeyPath): Schema<unknown> | undefined;
}

export function object<S extends Shape>(fields: S, opts: Common<Infer<S>> = {}): ObjectSchema<Infer<S>> {
  const expected = `map with keys ${Object.keys(fields).join(", ") || "(none)"}`;
  const check = (v: unknown, path: KeyPath): Infer<S> => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new SchemaError(path, "a map", v);
    const input = v as Record<string, unknown>;
    for (const key of Object.keys(input)) {
      if (!(key in fields)) {
        const known = Object.keys(fields);
        const hint = closest(key, known);
        throw new SchemaError(
          [...path, key],
          `no such key${hint ? ` (did you mean "${hint}"?)` : ""}; known keys: ${known.join(", ")}`,
          input[key],
        );
      }
    }
    const out: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(fields)) {
      const value = schema.parse(input[key], [...path, key]);
      if (value !== undefined) out[key] = value;
    }
    return out as Infer<S>;
  };
  // An object with all-defaulted fields defaults to the object of defaults.
  const allOptional = Object.values(fields).every((f) => f.optional);
  const effective: Common<Infer<S>> = { ...opts };
  const s = base<Infer<S>>(
    expected,
    effective,
    (v, path) => check(v, path),
    (str, path) => {
      let raw: unknown;
      try {
        raw = JSON.parse(str);
      } catch {
        throw new SchemaError(path, "a JSON map", str);
      }
      return check(raw, path);
    },
    { fields: Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.describe()])) },
  );
  return {
    ...s,
    optional: s.optional || allOptional,
    parse(v, path) {
      if (v === undefined && opts.default === undefined && allOptional) return check({}, path);
      return s.parse(v, path);
    },
    fields,
    at(path: KeyPath): Schema<unknown> | undefined {
      if (path.length === 0) return this as Schema<unknown>;
      const [head, ...rest] = path;
      const f = fields[String(head)];
      if (!f) return undefined;
      if (rest.length === 0) return f;
      const nested = f as Partial<ObjectSchema<unknown>>;
      return typeof nested.at === "function" ? nested.at(rest) : undefined;
    },
  };
}

/** A value of any JSON shape, for params that a kind checks itself. */
export function any(opts: Common<unknown> = {}): Schema<unknown> {
  return base("any value", opts, (v) => v, (s) => {
    try {
      return JSON.parse(s);
    } catch {
      return s;
    }
  });
}

/** A map from free-form string keys to values of one schema. */
export function record<T>(value: Schema<T>, opts: Common<Record<string, T>> = {}): Schema<Record<string, T>> {
  const expected = `map of ${value.expected}`;
  const check = (v: unknown, path: KeyPath): Record<string, T> => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new SchemaError(path, expected, v);
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = value.parse(x, [...path, k]);
    return out;
  };
  return base(expected, opts, check, (s, path) => {
    let raw: unknown;
    try {
      raw = JSON.parse(s);
    } catch {
      throw new SchemaError(path, "a JSON map", s);
    }
    return check(raw, path);
  }, { values: value.describe() });
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}
