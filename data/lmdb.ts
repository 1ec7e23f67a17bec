/**
 * Reader and writer for STR LMDBs: `num-samples` (decimal text), and for
 * i = 1..n `image-%09d` (encoded JPEG/PNG bytes) and `label-%09d` (UTF-8),
 * the format of every public STR data set (ABINet, deep-text-recognition-benchmark).
 *
 * npm:lmdb must be the LMDB 0.9 build in data format v1 that `deno task setup`
 * makes: its prebuilt v2 binary crashes the process on LMDBs made by Python's
 * lmdb, so the reader refuses to open data on it.
 *
 * Reading never writes into the data set directory: the reader opens a
 * private directory holding a symlink to `data.mdb` (and LMDB's lock file),
 * so read-only directories, read-only file systems and content-digested
 * cache entries all work. The writer writes into a fresh temporary sibling
 * directory and renames it into place on `commit`, without `lock.mdb`, and
 * with synchronous, count-chunked transactions so that the same samples give
 * the same bytes.
 */
import { Buffer } from "node:buffer";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { markOwner } from "../pipeline/liveness.ts";

type LmdbModule = typeof import("lmdb");
type Database = import("lmdb").RootDatabase<Buffer, string>;

let lmdbModule: Promise<LmdbModule> | undefined;

/** Loads npm:lmdb, refusing its v2 build (which segfaults on Python-made LMDBs). */
export async function loadLmdb(): Promise<LmdbModule> {
  lmdbModule ??= import("lmdb").then((m) => {
    checkLmdbBuild((m as unknown as { version: { major: number; minor: number; patch: number } }).version);
    return m;
  });
  return await lmdbModule;
}

/** Throws a clear message on the v2 build (LMDB 0.9.90+), which segfaults on Python-made LMDBs. */
export function checkLmdbBuild(version: { major: number; minor: number; patch: number }): void {
  if (version.patch >= 90) {
    throw new Error(
      `npm:lmdb is the prebuilt LMDB ${version.major}.${version.minor}.${version.patch} (data format v2), ` +
        "which crashes on STR LMDBs made by Python's lmdb. Run `deno task setup` to build it from source " +
        "in data format v1.",
    );
  }
}

export const NUM_SAMPLES_KEY = "num-samples";
export const imageKey = (i: number): string => `image-${String(i).padStart(9, "0")}`;
export const labelKey = (i: number): string => `label-${String(i).padStart(9, "0")}`;

export type BadInputPolicy = "error" | "skip";

export type BadReason =
  | "missing_num_samples"
  | "num_samples_mismatch"
  | "missing_image"
  | "empty_image"
  | "undecodable_image"
  | "missing_label"
  | "empty_label"
  | "invalid_utf8_label";

/** An error about one data set, or one sample of it (`index`, 1-based). */
export class DataError extends Error {
  constructor(readonly source: string, readonly reason: BadReason | string, detail: string, readonly index?: number) {
    super(`${source}${index !== undefined ? ` sample ${index}` : ""}: ${detail} (${reason})`);
    this.name = "DataError";
  }
}

/**
 * The bad-input policy and its tally: with `error` the first bad sample
 * throws a `DataError` naming it; with `skip` it is counted (with a few
 * examples) for the stage summary.
 */
export class BadSamples {
  counts: Partial<Record<BadReason | string, number>> = {};
  examples: string[] = [];

  constructor(readonly policy: BadInputPolicy, readonly source: string, readonly maxExamples = 10) {}

  report(reason: BadReason | string, detail: string, index?: number): void {
    const err = new DataError(this.source, reason, detail, index);
    if (this.policy === "error") throw err;
    this.counts[reason] = (this.counts[reason] ?? 0) + 1;
    if (this.examples.length < this.maxExamples) this.examples.push(err.message);
  }

  get total(): number {
    return Object.values(this.counts).reduce((a: number, b) => a + (b ?? 0), 0);
  }

  toJSON(): Record<string, unknown> {
    return { policy: this.policy, total: this.total, counts: this.counts, examples: this.examples };
  }
}

/** A sample as stored: encoded image bytes and the UTF-8-decoded label. */
export interface RawSample {
  readonly index: number;
  readonly image: Uint8Array;
  readonly label: string;
}

export type SampleCheck = { ok: true; sample: RawSample } | { ok: false; reason: BadReason; detail: string };

export interface LmdbReader {
  /** The data set directory. */
  readonly path: string;
  /** `num-samples` (or, without it and with policy `skip`, the highest label index found). */
  readonly size: number;
  /** Set when `num-samples` was missing and the size was inferred. */
  readonly inferredSize: boolean;
  /** `num-samples` as stored, when it disagreed with the samples there are (policy `skip`; `size` is then theirs). */
  readonly declaredSize?: number;
  /** What was wrong with `num-samples` (missing, not a number, or disagreeing), for the stage summary. */
  readonly sizeNote?: string;
  /** Raw value bytes of a key (a copy), or undefined. */
  getRaw(key: string): Uint8Array | undefined;
  /** Sample `index` (1-based) with the checks that need no decoding: image present and non-empty, label valid UTF-8 and non-empty. */
  read(index: number): SampleCheck;
  /** All keys, in LMDB order (for tests and stats). */
  keys(): string[];
  close(): Promise<void>;
}

export interface OpenLmdbOptions {
  /** What a missing `num-samples` does: `error` (default) or `skip` (infer the size from the label keys). */
  policy?: BadInputPolicy;
  /** Receives the missing-num-samples report when policy is skip. */
  bad?: BadSamples;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

async function isDir(path: string): Promise<boolean> {
  try {
    return (await fs.stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Private reader directories still open: removed when the process exits, if not closed before. */
const shadows = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const dir of shadows) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  }
});

/** Opens an STR LMDB directory (containing `data.mdb`) for reading. */
export async function openLmdb(path: string, opts: OpenLmdbOptions = {}): Promise<LmdbReader> {
  const dir = resolve(path);
  const dataFile = join(dir, "data.mdb");
  if (!(await isDir(dir))) throw new DataError(dir, "not_found", "no such LMDB directory");
  try {
    await fs.access(dataFile);
  } catch {
    throw new DataError(dir, "not_found", "no data.mdb in this directory (not an LMDB)");
  }
  const { open } = await loadLmdb();
  // A private directory with a symlink to data.mdb: LMDB's lock file goes there, not into the data set.
  // Who made it, recorded before the folder gets its final name: `gc` removes the folders of processes that are
  // gone (killed before they could), and never sees one without its owner.
  const made = await fs.mkdtemp(join(tmpdir(), ".strata-lmdb-new-"));
  markOwner(made);
  const shadow = join(tmpdir(), `strata-lmdb-${basename(made).slice(".strata-lmdb-new-".length)}`);
  await fs.rename(made, shadow);
  shadows.add(shadow);
  let db: Database;
  try {
    await fs.symlink(dataFile, join(shadow, "data.mdb"));
    db = open<Buffer, string>({ path: shadow, readOnly: true, encoding: "binary", noSubdir: false });
  } catch (e) {
    await fs.rm(shadow, { recursive: true, force: true });
    throw new DataError(dir, "open_failed", `cannot open LMDB: ${(e as Error).message}`);
  }
  const getRaw = (key: string): Uint8Array | undefined => {
    const v = db.getBinary(key);
    return v === undefined ? undefined : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  };

  let size: number;
  let inferredSize = false;
  let declaredSize: number | undefined;
  let sizeNote: string | undefined;
  const rawCount = getRaw(NUM_SAMPLES_KEY);
  const countText = rawCount ? new TextDecoder().decode(rawCount).trim() : "";
  if (rawCount && /^\d+$/.test(countText)) {
    size = Number(countText);
  } else {
    const detail = rawCount
      ? `num-samples is not a number: ${JSON.stringify(countText.slice(0, 40))}`
      : "no num-samples key";
    const bad = opts.bad ?? new BadSamples(opts.policy ?? "error", dir);
    try {
      if ((opts.policy ?? bad.policy) === "error") throw new DataError(dir, "missing_num_samples", detail);
      bad.report("missing_num_samples", detail);
    } catch (e) {
      await db.close();
      await fs.rm(shadow, { recursive: true, force: true });
      throw e;
    }
    size = 0;
    for (const key of db.getKeys({ start: "label-", end: "label.", snapshot: false })) {
      const m = /^label-(\d{9})$/.exec(String(key));
      if (m) size = Math.max(size, Number(m[1]));
    }
    inferredSize = true;
    sizeNote = `${detail}; size inferred from the label keys: ${size}`;
  }
  // A `num-samples` that lies: larger than the samples there are (a reader would fail at the first missing one,
  // after the count was reported), or smaller (samples silently ignored). Checked with two key lookups; the
  // keys are scanned only when it is wrong.
  if (!inferredSize) {
    const has = (i: number) => getRaw(labelKey(i)) !== undefined || getRaw(imageKey(i)) !== undefined;
    const tooLarge = size > 0 && !has(size);
    if (tooLarge || has(size + 1)) {
      let highest = 0;
      for (const prefix of ["image", "label"]) {
        for (const key of db.getKeys({ start: `${prefix}-`, end: `${prefix}.`, snapshot: false })) {
          const m = /^(?:image|label)-(\d{9})$/.exec(String(key));
          if (m) highest = Math.max(highest, Number(m[1]));
        }
      }
      const detail = tooLarge
        ? `num-samples says ${size}, but the samples end at ${highest}`
        : `num-samples says ${size}, but the samples go on to ${highest}`;
      const bad = opts.bad ?? new BadSamples(opts.policy ?? "error", dir);
      try {
        if ((opts.policy ?? bad.policy) === "error") {
          throw new DataError(dir, "num_samples_mismatch", `${detail}; the data set cannot be trusted`);
        }
        bad.report("num_samples_mismatch", detail);
      } catch (e) {
        await db.close();
        await fs.rm(shadow, { recursive: true, force: true });
        throw e;
      }
      declaredSize = size;
      sizeNote = `${detail}: reading ${highest}`;
      size = highest;
    }
  }

  let closed = false;
  return {
    path: dir,
    size,
    inferredSize,
    ...(declaredSize !== undefined ? { declaredSize } : {}),
    ...(sizeNote !== undefined ? { sizeNote } : {}),
    getRaw,
    read(index: number): SampleCheck {
      if (!Number.isInteger(index) || index < 1 || index > size) {
        throw new RangeError(`${dir}: sample index ${index} outside 1..${size}`);
      }
      const image = getRaw(imageKey(index));
      if (image === undefined) return { ok: false, reason: "missing_image", detail: `no ${imageKey(index)}` };
      if (image.length === 0) return { ok: false, reason: "empty_image", detail: `${imageKey(index)} is empty` };
      const labelBytes = getRaw(labelKey(index));
      if (labelBytes === undefined) return { ok: false, reason: "missing_label", detail: `no ${labelKey(index)}` };
      let label: string;
      try {
        label = utf8.decode(labelBytes);
      } catch {
        return { ok: false, reason: "invalid_utf8_label", detail: `${labelKey(index)} is not valid UTF-8` };
      }
      if (label.trim().length === 0) {
        return { ok: false, reason: "empty_label", detail: `${labelKey(index)} is empty` };
      }
      return { ok: true, sample: { index, image, label } };
    },
    keys(): string[] {
      return [...db.getKeys({ snapshot: false })].map(String);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await db.close();
      await fs.rm(shadow, { recursive: true, force: true });
      shadows.delete(shadow);
    },
  };
}

export interface LmdbWriter {
  /** The final directory (it exists only after `commit`). */
  readonly path: string;
  /** Number of samples added so far. */
  readonly count: number;
  /** Appends a sample; returns its 1-based index. */
  add(image: Uint8Array, label: string): number;
  /** Writes an arbitrary key (tests use this to make malformed data sets). */
  putRaw(key: string, value: Uint8Array): void;
  /**
   * Writes `num-samples` (unless `writeNumSamples` is false), closes, and
   * renames the temporary directory to `path`.
   */
  commit(opts?: { writeNumSamples?: boolean }): Promise<void>;
  /** Removes the temporary directory. */
  abort(): Promise<void>;
}

export interface CreateLmdbOptions {
  /** Replace an existing non-empty directory at `path` on commit (default false: an error; an empty one is always fine). */
  overwrite?: boolean;
  /** Samples per write transaction (default 1000). */
  chunk?: number;
}

const enc = new TextEncoder();

/** Creates a writer for a new STR LMDB at `path` (a directory). */
export async function createLmdb(path: string, opts: CreateLmdbOptions = {}): Promise<LmdbWriter> {
  const dest = resolve(path);
  // A fresh path, or an empty directory (as the engine makes for `dir` outputs).
  const existing = await fs.readdir(dest).then(
    (names) => names.length === 0 ? "empty" : "full",
    (e) => (e as NodeJS.ErrnoException).code === "ENOENT" ? "none" : "full",
  );
  if (existing === "full" && !opts.overwrite) {
    throw new Error(`${dest} already exists and is not empty; the LMDB writer writes only into a fresh directory`);
  }
  const replace = existing !== "none";
  await fs.mkdir(dirname(dest), { recursive: true });
  const tmp = await fs.mkdtemp(join(dirname(dest), `.${basename(dest)}.partial-`));
  const { open } = await loadLmdb();
  // Python writers use a 1 TB map; the file grows only as pages are written.
  const db = open<Buffer, string>({
    path: tmp,
    encoding: "binary",
    noSubdir: false,
    mapSize: 2 ** 40,
    noSync: true,
  });
  const chunk = opts.chunk ?? 1000;
  let pending: [string, Uint8Array][] = [];
  let count = 0;
  let state: "open" | "committed" | "aborted" = "open";
  const flush = () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    db.transactionSync(() => {
      for (const [k, v] of batch) db.putSync(k, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    });
  };
  const put = (key: string, value: Uint8Array) => {
    if (state !== "open") throw new Error(`${dest}: the LMDB writer is ${state}`);
    pending.push([key, value]);
    if (pending.length >= 2 * chunk) flush();
  };
  return {
    path: dest,
    get count() {
      return count;
    },
    add(image: Uint8Array, label: string): number {
      const i = ++count;
      put(imageKey(i), image);
      put(labelKey(i), enc.encode(label));
      return i;
    },
    putRaw: put,
    async commit(commitOpts = {}): Promise<void> {
      if (state !== "open") throw new Error(`${dest}: the LMDB writer is ${state}`);
      try {
        if (commitOpts.writeNumSamples ?? true) put(NUM_SAMPLES_KEY, enc.encode(String(count)));
        flush();
        state = "committed";
        await db.close();
        await fs.rm(join(tmp, "lock.mdb"), { force: true });
        await fs.chmod(tmp, 0o755);
        if (replace) await fs.rm(dest, { recursive: true, force: true });
        await fs.rename(tmp, dest);
      } catch (e) {
        await fs.rm(tmp, { recursive: true, force: true });
        throw e;
      }
    },
    async abort(): Promise<void> {
      if (state !== "open") return;
      state = "aborted";
      await db.close();
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
}
