/**
 * Safe extraction of zip and tar (optionally gzipped) archives.
 *
 * Refused, with the entry named: absolute paths, paths that escape the
 * target directory (`..`), symlinks (and hard links) pointing outside it,
 * and entries written through a symlink. Supported: zip stored/deflate
 * (with ZIP64 sizes and offsets), tar ustar/GNU/pax (long names), regular
 * files, directories, symlinks and hard links inside the target.
 *
 * The archives are parsed by pinned npm libraries: zip by `yauzl` (the project's one zip reader; checkpoints
 * use it too), tar(.gz) by `tar`'s streaming `Parser`. The refusals above are strata's own: every entry goes
 * through `sink`, which checks it before anything is written (the libraries' own path rewriting is not used:
 * yauzl's name checks are off so that a `..` entry is refused here, by name, rather than renamed).
 */
import { createReadStream } from "node:fs";
import * as fs from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import { Buffer } from "node:buffer";
import { Parser, type ReadEntry } from "tar";
// @ts-types="@types/yauzl"
import yauzl from "yauzl";

export type ArchiveFormat = "zip" | "tar" | "tar.gz";

export class ArchiveError extends Error {
  constructor(archive: string, entry: string | undefined, reason: string) {
    super(`${archive}${entry !== undefined ? `: entry ${JSON.stringify(entry)}` : ""}: ${reason}`);
    this.name = "ArchiveError";
  }
}

/** Archive format from the first bytes (zip, gzip → tar.gz, ustar), else undefined. */
export async function sniffArchive(path: string): Promise<ArchiveFormat | undefined> {
  const fh = await fs.open(path, "r");
  try {
    const buf = new Uint8Array(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && (buf[2] === 3 || buf[2] === 5)) return "zip";
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return "tar.gz";
    if (bytesRead >= 262 && new TextDecoder().decode(buf.subarray(257, 262)) === "ustar") return "tar";
    return undefined;
  } finally {
    await fh.close();
  }
}

export interface ExtractResult {
  files: number;
  dirs: number;
  links: number;
  bytes: number;
}

/** Checks an entry name and returns its absolute destination inside `target`. */
function destination(archive: string, target: string, name: string, strip: number): string | undefined {
  const clean = name.replace(/\\/g, "/");
  if (clean.startsWith("/") || isAbsolute(clean) || /^[A-Za-z]:/.test(clean)) {
    throw new ArchiveError(archive, name, "absolute path refused");
  }
  const parts = clean.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new ArchiveError(archive, name, "path escapes the target directory (..) refused");
  const kept = parts.slice(strip);
  if (kept.length === 0) return undefined;
  const dest = resolve(target, ...kept);
  if (dest !== target && !dest.startsWith(target + sep)) {
    throw new ArchiveError(archive, name, "path escapes the target directory refused");
  }
  return dest;
}

/** Refuses writing through a symlink: every existing ancestor inside target must be a real directory. */
async function checkParents(archive: string, target: string, name: string, dest: string): Promise<void> {
  const rel = relative(target, dirname(dest));
  if (rel === "") return;
  let p = target;
  for (const part of rel.split(sep)) {
    p = join(p, part);
    try {
      const st = await fs.lstat(p);
      if (st.isSymbolicLink()) {
        throw new ArchiveError(archive, name, `written through the symlink ${relative(target, p)}, refused`);
      }
      if (!st.isDirectory()) throw new ArchiveError(archive, name, `${relative(target, p)} is not a directory`);
    } catch (e) {
      if (e instanceof ArchiveError) throw e;
      return; // does not exist yet: created below as a real directory
    }
  }
}

function checkLinkTarget(archive: string, target: string, name: string, dest: string, link: string): void {
  if (isAbsolute(link)) throw new ArchiveError(archive, name, `symlink to the absolute path ${link} refused`);
  const resolved = normalize(resolve(dirname(dest), link));
  if (resolved !== target && !resolved.startsWith(target + sep)) {
    throw new ArchiveError(archive, name, `symlink to ${link} points outside the target directory, refused`);
  }
}

interface Sink {
  file(name: string, data: AsyncIterable<Uint8Array> | Uint8Array, mode?: number): Promise<void>;
  dir(name: string): Promise<void>;
  symlink(name: string, link: string): Promise<void>;
  hardlink(name: string, link: string): Promise<void>;
  result: ExtractResult;
}

function sink(archive: string, target: string, strip: number): Sink {
  const result: ExtractResult = { files: 0, dirs: 0, links: 0, bytes: 0 };
  return {
    result,
    async file(name, data, mode) {
      const dest = destination(archive, target, name, strip);
      if (!dest) return;
      await checkParents(archive, target, name, dest);
      await fs.mkdir(dirname(dest), { recursive: true });
      const existing = await fs.lstat(dest).catch(() => undefined);
      if (existing?.isSymbolicLink()) throw new ArchiveError(archive, name, "would overwrite a symlink, refused");
      const fh = await fs.open(dest, "w", mode ? mode & 0o777 | 0o600 : 0o644);
      try {
        if (data instanceof Uint8Array) {
          await fh.write(data);
          result.bytes += data.length;
        } else {
          for await (const chunk of data) {
            await fh.write(chunk);
            result.bytes += chunk.length;
          }
        }
      } finally {
        await fh.close();
      }
      result.files++;
    },
    async dir(name) {
      const dest = destination(archive, target, name, strip);
      if (!dest) return;
      await checkParents(archive, target, name, join(dest, "x"));
      await fs.mkdir(dest, { recursive: true });
      result.dirs++;
    },
    async symlink(name, link) {
      const dest = destination(archive, target, name, strip);
      if (!dest) return;
      checkLinkTarget(archive, target, name, dest, link);
      await checkParents(archive, target, name, dest);
      await fs.mkdir(dirname(dest), { recursive: true });
      await fs.rm(dest, { force: true });
      await fs.symlink(link, dest);
      result.links++;
    },
    async hardlink(name, link) {
      const dest = destination(archive, target, name, strip);
      if (!dest) return;
      const src = destination(archive, target, link, strip);
      if (!src) throw new ArchiveError(archive, name, `hard link to ${link} outside the target, refused`);
      await checkParents(archive, target, name, dest);
      await checkParents(archive, target, link, src);
      const st = await fs.lstat(src).catch(() => undefined);
      if (!st?.isFile()) throw new ArchiveError(archive, name, `hard link to ${link}, which is not an extracted file`);
      await fs.mkdir(dirname(dest), { recursive: true });
      await fs.copyFile(src, dest);
      result.links++;
    },
  };
}

/** Extracts `archive` into the directory `target` (created if needed). */
export async function extractArchive(
  archive: string,
  target: string,
  format?: ArchiveFormat,
  opts: { stripComponents?: number } = {},
): Promise<ExtractResult> {
  const fmt = format ?? await sniffArchive(archive);
  if (!fmt) throw new ArchiveError(archive, undefined, "not a zip, tar or tar.gz archive");
  const root = resolve(target);
  await fs.mkdir(root, { recursive: true });
  const s = sink(archive, await fs.realpath(root), opts.stripComponents ?? 0);
  if (fmt === "zip") await extractZip(archive, s);
  else await extractTar(archive, s);
  return s.result;
}

// ---------------------------------------------------------------- tar (npm tar)

/** Entry types written as files (`OldFile`: pre-POSIX, `ContiguousFile`: treated as regular, like GNU tar). */
const TAR_FILES = new Set(["File", "OldFile", "ContiguousFile"]);

async function extractTar(archive: string, s: Sink): Promise<void> {
  // The parser accepts a plain tar cut inside a header block; a tar is whole 512-byte blocks.
  const head = new Uint8Array(2);
  const fh = await fs.open(archive, "r");
  const [{ size }] = await Promise.all([fh.stat(), fh.read(head, 0, 2, 0)]).finally(() => fh.close());
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  if (!gzip && size % 512 !== 0) {
    throw new ArchiveError(archive, undefined, `truncated tar (${size} bytes, not whole 512-byte blocks)`);
  }
  // strict: warnings (bad checksums, truncation) are errors. gzip is detected by the parser.
  const parser = new Parser({ strict: true });
  let failure: unknown;
  let fail!: (e: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {});
  const stop = (e: unknown) => {
    if (failure === undefined) {
      failure = e instanceof ArchiveError ? e : new ArchiveError(archive, undefined, (e as Error).message);
      fail(failure);
    }
  };
  // The parser emits one entry at a time, the next once the previous one has been read; entries are
  // handled in order on one promise chain.
  let chain: Promise<void> = Promise.resolve();
  parser.on("entry", (entry: ReadEntry) => {
    chain = chain.then(async () => {
      if (failure !== undefined) return void entry.resume();
      try {
        await handleTarEntry(archive, entry, s);
      } catch (e) {
        entry.resume();
        stop(e);
      }
    });
  });
  parser.on("error", stop);
  const ended = new Promise<void>((done) => parser.on("end", () => done()));
  for await (const chunk of createReadStream(archive)) {
    if (failure !== undefined) break;
    if (!parser.write(chunk as Uint8Array)) {
      await Promise.race([new Promise((r) => parser.once("drain", r)), failed]);
    }
  }
  if (failure === undefined) {
    parser.end();
    await Promise.race([ended, failed]);
    await chain;
  }
  if (failure !== undefined) throw failure;
}

async function handleTarEntry(archive: string, entry: ReadEntry, s: Sink): Promise<void> {
  const name = entry.path;
  if (TAR_FILES.has(entry.type)) return await s.file(name, entry as unknown as AsyncIterable<Uint8Array>, entry.mode);
  entry.resume();
  if (entry.type === "Directory") return await s.dir(name);
  if (entry.type === "SymbolicLink") return await s.symlink(name, entry.linkpath ?? "");
  if (entry.type === "Link") return await s.hardlink(name, entry.linkpath ?? "");
  throw new ArchiveError(archive, name, `unsupported tar entry type ${entry.type} (devices, fifos) refused`);
}

// ---------------------------------------------------------------- zip (yauzl)

function promised<T>(f: (cb: (err: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => f((err, value) => (err ? reject(err) : resolve(value as T))));
}

/**
 * Visits every entry of a zip in order (`visit` may read it with `open`). Names are raw bytes decoded as
 * UTF-8, without yauzl's checks (the caller checks them).
 */
export async function eachZipEntry(
  zip: yauzl.ZipFile,
  visit: (entry: yauzl.Entry, name: string, open: () => Promise<NodeJS.ReadableStream>) => Promise<void>,
): Promise<void> {
  const dec = new TextDecoder();
  await new Promise<void>((resolve, reject) => {
    zip.on("error", reject);
    zip.on("end", () => resolve());
    zip.on("entry", (entry: yauzl.Entry) => {
      const name = dec.decode(entry.fileName as unknown as Uint8Array);
      visit(entry, name, () => promised((cb) => zip.openReadStream(entry, cb)))
        .then(() => zip.readEntry(), reject);
    });
    zip.readEntry();
  });
}

/** Opens a zip file or buffer with yauzl (lazy entries, raw names). */
export function openZip(source: string | Uint8Array): Promise<yauzl.ZipFile> {
  const opts = { lazyEntries: true, decodeStrings: false, autoClose: false, validateEntrySizes: true };
  return typeof source === "string"
    ? promised((cb) => yauzl.open(source, opts, cb))
    : promised((cb) => yauzl.fromBuffer(Buffer.from(source.buffer, source.byteOffset, source.byteLength), opts, cb));
}

/** Every member of an in-memory zip (directories left out), by name, in archive order. Throws yauzl's errors. */
export async function readZipMembers(bytes: Uint8Array): Promise<Map<string, Uint8Array>> {
  const zip = await openZip(bytes);
  const out = new Map<string, Uint8Array>();
  try {
    await eachZipEntry(zip, async (_entry, name, open) => {
      if (name.endsWith("/")) return;
      const chunks: Uint8Array[] = [];
      for await (const c of await open()) chunks.push(c as Uint8Array);
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      // A plain Uint8Array view (a Buffer's `slice` would not copy).
      out.set(name, new Uint8Array(all.buffer, all.byteOffset, all.byteLength));
    });
  } finally {
    zip.close();
  }
  return out;
}

async function extractZip(archive: string, s: Sink): Promise<void> {
  const zip = await openZip(archive).catch((e) => {
    throw new ArchiveError(archive, undefined, `not a readable zip (${(e as Error).message})`);
  });
  try {
    await eachZipEntry(zip, async (entry, name, open) => {
      // Unix mode from the external attributes when the entry was made on Unix.
      const mode = entry.versionMadeBy >> 8 === 3 ? entry.externalFileAttributes >>> 16 : 0;
      const type = mode & 0o170000;
      if (name.endsWith("/") || type === 0o040000) return await s.dir(name);
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        throw new ArchiveError(archive, name, `unsupported compression method ${entry.compressionMethod}`);
      }
      const body = async () => {
        try {
          return await open();
        } catch (e) {
          throw new ArchiveError(archive, name, (e as Error).message);
        }
      };
      if (type === 0o120000) {
        const chunks: Uint8Array[] = [];
        for await (const c of await body()) chunks.push(c as Uint8Array);
        const target = new TextDecoder().decode(Buffer.concat(chunks));
        if (target === "") throw new ArchiveError(archive, name, "empty symlink");
        return await s.symlink(name, target);
      }
      await s.file(name, (await body()) as unknown as AsyncIterable<Uint8Array>, mode);
    });
  } catch (e) {
    if (e instanceof ArchiveError) throw e;
    throw new ArchiveError(archive, undefined, `corrupt zip: ${(e as Error).message}`);
  } finally {
    zip.close();
  }
}
