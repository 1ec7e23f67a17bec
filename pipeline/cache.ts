/**
 * The content-addressed cache: `<cache>/<key[0:2]>/<key>/` holds `outputs/`,
 * `manifest.json`, `log.txt`, `summary.json` and `timings.json`. Stages write
 * into `<cache>/tmp/<key>.<pid>.<random>/` (same file system) which is renamed
 * into place on success. `<cache>/locks/<key>.lock` serialises computing one
 * key across processes; `<cache>/scratch/<key>/` keeps resumable state.
 */
import { join } from "node:path";
import { type ContentDigest, contentDigest, DigestCache, walkFiles, writeFileAtomic } from "./digest.ts";
import { digestOf } from "./hash.ts";

/** Everything that goes into a key. */
export interface KeyComponents {
  kind: string;
  version: number;
  params: Record<string, unknown>;
  /** Input name → one entry per delivered upstream output. */
  inputs: Record<string, InputComponent[]>;
  /** Digest of the kind's module and its project imports. */
  code: string;
  env: Record<string, string>;
  /** Experiment name and stage id, for kinds whose outputs embed them (`keyedByContext`). */
  context?: { experiment: string; stage: string };
}

export interface InputComponent {
  /** `stageId.output`, or `path` for external files. */
  from: string;
  digest: string;
  /** Digest of the producer's params (they are delivered to the stage in `ResolvedInput.params`). */
  params?: string;
}

export function keyOf(c: KeyComponents): string {
  return digestOf(c);
}

export interface Timings {
  started: string;
  finished: string;
  seconds: number;
}

export interface EntryManifest {
  version: 1;
  key: string;
  stage: string;
  components: KeyComponents;
  outputs: Record<string, ContentDigest>;
  summary: Record<string, unknown>;
  notes: string[];
  timings: Timings;
  /**
   * Per output, the mtime (ms) of each file of `outputs[name].files` (same order) when the entry was made: with the
   * sizes, the cheap check made on every cache hit. Absent in entries made before it existed (sizes only).
   */
  mtimes?: Record<string, number[]>;
  /**
   * Set when this entry replaced a damaged one (ISO time the recomputation started): a consumer entry finished
   * before it may have been computed from the damaged bytes, so it is recomputed too (in this or a later run).
   */
  rederived?: string;
}

/** The mtimes (ms) of an output's files, in the order of its digest's `files`. */
export function outputMtimes(path: string, d: ContentDigest): number[] {
  return d.files.map(([rel]) => Deno.statSync(rel === "" ? path : join(path, rel)).mtime?.getTime() ?? 0);
}

export function defaultCacheDir(root: string): string {
  return Deno.env.get("STRATA_CACHE") || join(root, ".strata", "cache");
}

export class Cache {
  readonly digests: DigestCache;
  constructor(readonly dir: string) {
    this.digests = new DigestCache(join(dir, "digests.json"));
  }

  /**
   * The cache-wide run lock: every `run` holds it shared for its whole duration and `gc` holds it exclusively,
   * so gc never removes an entry a running experiment committed (its lock file is written at the end) nor the
   * temporary directory of a running stage. Blocks until granted; release with `close()`.
   */
  async runLock(exclusive: boolean): Promise<Deno.FsFile> {
    this.ensureDir();
    const file = await Deno.open(join(this.dir, "run.lock"), { create: true, read: true, write: true });
    await file.lock(exclusive);
    return file;
  }

  /** Creates the cache directory, or says clearly why it cannot be one (e.g. `--cache` names a file). */
  ensureDir(): void {
    try {
      const st = Deno.statSync(this.dir);
      if (!st.isDirectory) {
        throw new CacheDirError(`cache directory ${this.dir} (--cache or $STRATA_CACHE) is a file, not a directory`);
      }
      return;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        if (e instanceof CacheDirError) throw e;
        throw new CacheDirError(`cache directory ${this.dir} (--cache or $STRATA_CACHE): ${(e as Error).message}`);
      }
    }
    try {
      Deno.mkdirSync(this.dir, { recursive: true });
    } catch (e) {
      throw new CacheDirError(`cannot create the cache directory ${this.dir}: ${(e as Error).message}`);
    }
  }

  entryDir(key: string): string {
    return join(this.dir, key.slice(0, 2), key);
  }

  /** The entry's manifest, or undefined when there is no (complete) entry. */
  readManifest(key: string): EntryManifest | undefined {
    try {
      return JSON.parse(Deno.readTextFileSync(join(this.entryDir(key), "manifest.json")));
    } catch {
      return undefined;
    }
  }

  has(key: string): boolean {
    try {
      return Deno.statSync(join(this.entryDir(key), "manifest.json")).isFile;
    } catch {
      return false;
    }
  }

  scratchDir(key: string): string {
    return join(this.dir, "scratch", key);
  }

  /** A fresh temporary directory for computing `key`. */
  newTmp(key: string): string {
    const base = join(this.dir, "tmp");
    Deno.mkdirSync(base, { recursive: true });
    const dir = join(base, `${key}.${Deno.pid}.${Math.random().toString(36).slice(2, 10)}`);
    Deno.mkdirSync(dir);
    return dir;
  }

  /** Removes temporary directories of `key` left by killed attempts (call while holding the key's lock). */
  cleanTmp(key: string): void {
    const base = join(this.dir, "tmp");
    try {
      for (const e of Deno.readDirSync(base)) {
        if (e.name.startsWith(`${key}.`)) removeQuietly(join(base, e.name));
      }
    } catch { /* no tmp dir */ }
  }

  /** Takes the per-key lock (exclusive `flock`), waiting while another process holds it. */
  async lock(key: string): Promise<() => void> {
    const dir = join(this.dir, "locks");
    Deno.mkdirSync(dir, { recursive: true });
    const file = await Deno.open(join(dir, `${key}.lock`), { read: true, write: true, create: true });
    await file.lock(true);
    return () => {
      try {
        file.unlockSync();
      } finally {
        file.close();
      }
    };
  }

  /** Moves a finished temporary directory into place (replacing an existing entry, e.g. with --force). */
  commit(tmp: string, key: string): void {
    const target = this.entryDir(key);
    Deno.mkdirSync(join(this.dir, key.slice(0, 2)), { recursive: true });
    try {
      Deno.renameSync(tmp, target);
    } catch (e) {
      if (!this.exists(target)) throw e;
      this.remove(key);
      Deno.renameSync(tmp, target);
    }
  }

  private exists(p: string): boolean {
    try {
      Deno.lstatSync(p);
      return true;
    } catch {
      return false;
    }
  }

  /** Removes an entry: renamed out of the way first so that readers never see half of it. */
  remove(key: string): void {
    const target = this.entryDir(key);
    if (!this.exists(target)) return;
    const trash = join(this.dir, "tmp", `trash.${key}.${Deno.pid}.${Math.random().toString(36).slice(2, 10)}`);
    Deno.mkdirSync(join(this.dir, "tmp"), { recursive: true });
    Deno.renameSync(target, trash);
    removeQuietly(trash);
  }

  /**
   * The check made on every cache hit, without reading file contents: every recorded output file is there with
   * its size (and, when recorded, its mtime), and a directory output holds no extra files. A changed mtime or an
   * extra file alone is not proof of damage, so then the entry is re-hashed (and, when intact, its mtimes are
   * refreshed so the next run is cheap again). Returns what is wrong, or undefined when intact.
   */
  async quickCheck(key: string, m: EntryManifest): Promise<string | undefined> {
    let suspect = "";
    for (const [name, out] of Object.entries(m.outputs ?? {})) {
      const base = join(this.entryDir(key), "outputs", name);
      const mtimes = m.mtimes?.[name];
      for (const [i, [rel, size]] of out.files.entries()) {
        const shown = rel === "" ? name : `${name}/${rel}`;
        let st: Deno.FileInfo;
        try {
          st = Deno.statSync(rel === "" ? base : join(base, rel));
        } catch {
          return `output file ${shown} is missing`;
        }
        if (!st.isFile) return `output ${shown} is not a file`;
        if (st.size !== size) return `output file ${shown} has ${st.size} bytes, recorded ${size}`;
        if (mtimes && mtimes[i] !== (st.mtime?.getTime() ?? 0)) suspect ||= `output file ${shown} was modified`;
      }
      if (out.type === "dir") {
        let n = 0;
        try {
          for (const _ of walkFiles(base)) n++;
        } catch {
          return `output ${name} is missing`;
        }
        if (n !== out.files.length) suspect ||= `output ${name} holds ${n} files, recorded ${out.files.length}`;
      }
    }
    if (!suspect) return undefined;
    const bad = await this.verify(key);
    if (bad) return `${suspect}: ${bad}`;
    // Same bytes (touched, or copied back): remember the new mtimes.
    try {
      const mtimes: Record<string, number[]> = {};
      for (const [name, out] of Object.entries(m.outputs)) {
        mtimes[name] = outputMtimes(join(this.entryDir(key), "outputs", name), out);
      }
      writeFileAtomic(join(this.entryDir(key), "manifest.json"), JSON.stringify({ ...m, mtimes }, null, 1) + "\n");
    } catch { /* a read-only cache: the check just stays slower */ }
    return undefined;
  }

  /** Re-hashes an entry's outputs; returns a description of the first mismatch, or undefined if intact. */
  async verify(key: string): Promise<string | undefined> {
    const m = this.readManifest(key);
    if (!m) return "manifest missing or unreadable";
    const fresh = new DigestCache(undefined);
    for (const [name, out] of Object.entries(m.outputs)) {
      let d: ContentDigest;
      try {
        d = await contentDigest(join(this.entryDir(key), "outputs", name), fresh);
      } catch (e) {
        return `output ${name}: ${(e as Error).message}`;
      }
      if (d.digest !== out.digest) return `output ${name}: digest ${d.digest} ≠ recorded ${out.digest}`;
    }
    return undefined;
  }

  writeEntryFiles(tmp: string, manifest: EntryManifest): void {
    writeFileAtomic(join(tmp, "summary.json"), JSON.stringify(manifest.summary, null, 2) + "\n");
    writeFileAtomic(join(tmp, "timings.json"), JSON.stringify(manifest.timings, null, 2) + "\n");
    writeFileAtomic(join(tmp, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
  }

  /** Keys of all complete entries. */
  *entries(): Generator<string> {
    let shards: Deno.DirEntry[];
    try {
      shards = [...Deno.readDirSync(this.dir)];
    } catch {
      return;
    }
    for (const s of shards) {
      if (!s.isDirectory || !/^[0-9a-f]{2}$/.test(s.name)) continue;
      for (const e of Deno.readDirSync(join(this.dir, s.name))) {
        if (e.isDirectory && /^[0-9a-f]{64}$/.test(e.name)) yield e.name;
      }
    }
  }
}

/** The cache directory cannot be used. */
export class CacheDirError extends Error {
  override name = "CacheDirError";
}

export function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch { /* already gone */ }
}
