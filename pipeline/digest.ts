/**
 * Content digests of files and directory trees, cached by
 * (device, inode, size, mtime) in a JSON file so that an unchanged file is
 * never re-read. A file whose mtime lies within the same tick (< 2 s) of the
 * moment it was hashed is not trusted: it is hashed again next time.
 */
import { join, relative, sep } from "node:path";
import { digestOf, hashFile } from "./hash.ts";

/** [relative path ("/"-separated), size, sha256] for each file of a tree, sorted by path. */
export type ManifestEntry = [string, number, string];

export interface ContentDigest {
  type: "file" | "dir";
  /** "sha256:<hex>" of the file, or of the canonical manifest of a directory. */
  digest: string;
  size: number;
  files: ManifestEntry[];
}

interface CachedFile {
  dev: number;
  ino: number;
  size: number;
  mtime: number;
  /** Status-change time: catches a file replaced by a copy that kept the old mtime (tar x, rsync -a). */
  ctime?: number;
  sha256: string;
  /** Import specifiers of a source file (see code.ts). */
  imports?: string[];
}

const TICK_MS = 2000;

export class DigestCache {
  private entries: Record<string, CachedFile> = {};
  private loaded = false;
  private dirty = false;

  constructor(readonly file: string | undefined) {}

  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    if (!this.file) return;
    try {
      const data = JSON.parse(Deno.readTextFileSync(this.file));
      if (data && data.version === 1 && typeof data.entries === "object") this.entries = data.entries;
    } catch {
      // absent or unreadable: start empty
    }
  }

  /** The cached entry for `path` if its stat still matches; never reads the file. */
  lookup(path: string, st?: Deno.FileInfo): CachedFile | undefined {
    this.load();
    const e = this.entries[path];
    if (!e) return undefined;
    st ??= Deno.statSync(path);
    if (
      e.dev !== (st.dev ?? 0) || e.ino !== (st.ino ?? 0) || e.size !== st.size || e.mtime !== mtimeOf(st) ||
      e.ctime !== ctimeOf(st)
    ) {
      return undefined;
    }
    return e;
  }

  /** Records a digest computed from a read that started at `hashedAt` (ms since epoch). */
  store(path: string, st: Deno.FileInfo, hashedAt: number, sha256: string, extra: Partial<CachedFile> = {}): void {
    this.load();
    const mtime = mtimeOf(st);
    if (hashedAt - mtime < TICK_MS) {
      // Modified within the same tick as the hashing: a later write could keep the same mtime.
      if (this.entries[path]) {
        delete this.entries[path];
        this.dirty = true;
      }
      return;
    }
    this.entries[path] = {
      dev: st.dev ?? 0,
      ino: st.ino ?? 0,
      size: st.size,
      mtime,
      ctime: ctimeOf(st),
      sha256,
      ...extra,
    };
    this.dirty = true;
  }

  /** sha256 of a file, from the cache when its stat matches. */
  async fileSha(path: string, st?: Deno.FileInfo): Promise<{ sha256: string; size: number }> {
    st ??= await Deno.stat(path);
    const hit = this.lookup(path, st);
    if (hit) return { sha256: hit.sha256, size: hit.size };
    const hashedAt = Date.now();
    const r = await hashFile(path);
    // Re-stat: if the file changed while being read, don't cache.
    const after = await Deno.stat(path);
    if (after.size === r.size && mtimeOf(after) === mtimeOf(st)) this.store(path, after, hashedAt, r.sha256);
    return r;
  }

  /** Writes the cache atomically if anything changed. */
  save(): void {
    if (!this.dirty || !this.file) return;
    this.dirty = false;
    try {
      writeFileAtomic(this.file, JSON.stringify({ version: 1, entries: this.entries }));
    } catch {
      // a digest cache that cannot be written only costs time
    }
  }
}

function ctimeOf(st: Deno.FileInfo): number {
  return st.ctime?.getTime() ?? 0;
}

function mtimeOf(st: Deno.FileInfo): number {
  return st.mtime?.getTime() ?? 0;
}

/** Digest of a file or a directory tree (symlinks followed). */
export async function contentDigest(path: string, cache: DigestCache): Promise<ContentDigest> {
  const st = await Deno.stat(path);
  if (st.isFile) {
    const { sha256, size } = await cache.fileSha(path, st);
    return { type: "file", digest: `sha256:${sha256}`, size, files: [["", size, sha256]] };
  }
  if (!st.isDirectory) throw new Error(`${path}: neither a file nor a directory`);
  const files: ManifestEntry[] = [];
  let total = 0;
  for (const f of walkFiles(path)) {
    const { sha256, size } = await cache.fileSha(f);
    files.push([relative(path, f).split(sep).join("/"), size, sha256]);
    total += size;
  }
  files.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { type: "dir", digest: manifestDigest(files), size: total, files };
}

export function manifestDigest(files: ManifestEntry[]): string {
  return `sha256:${digestOf(files)}`;
}

/** All regular files under `dir` (following symlinks), in no particular order. */
export function* walkFiles(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walkFiles(p);
    else if (e.isFile) yield p;
    else if (e.isSymlink) {
      const st = Deno.statSync(p);
      if (st.isDirectory) yield* walkFiles(p);
      else if (st.isFile) yield p;
    }
  }
}

/** Writes text to `path` via a temporary sibling and a rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${Deno.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    if (typeof data === "string") Deno.writeTextFileSync(tmp, data);
    else Deno.writeFileSync(tmp, data);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* not there */ }
    throw e;
  }
}

/** Total size in bytes of a file or a directory tree (not following symlinks). */
export function diskUsage(path: string): number {
  const st = Deno.lstatSync(path);
  if (!st.isDirectory) return st.size;
  let total = 0;
  for (const e of Deno.readDirSync(path)) total += diskUsage(join(path, e.name));
  return total;
}
