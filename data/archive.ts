/**
 * Safe extraction of zip and tar (optionally gzipped) archives.
 *
 * Refused, with the entry named: absolute paths, paths that escape the
 * target directory (`..`), symlinks (and hard links) pointing outside it,
 * and entries written through a symlink. Supported: zip stored/deflate
 * (with ZIP64 sizes and offsets), tar ustar/GNU/pax (long names), regular
 * files, directories, symlinks and hard links inside the target.
 */
import { createReadStream } from "node:fs";
import * as fs from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, createInflateRaw } from "node:zlib";
import { Readable, Writable } from "node:stream";

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
  else await extractTar(archive, fmt === "tar.gz", s);
  return s.result;
}

// ---------------------------------------------------------------- tar

async function extractTar(archive: string, gzip: boolean, s: Sink): Promise<void> {
  const source = createReadStream(archive);
  const stream: AsyncIterable<Uint8Array> = gzip ? source.pipe(createGunzip()) : source;
  const reader = new ByteReader(stream[Symbol.asyncIterator]());
  const dec = new TextDecoder();
  const str = (b: Uint8Array, off: number, len: number) => {
    const sub = b.subarray(off, off + len);
    const end = sub.indexOf(0);
    return dec.decode(end >= 0 ? sub.subarray(0, end) : sub);
  };
  const octal = (b: Uint8Array, off: number, len: number) => {
    if (b[off] & 0x80) {
      // GNU base-256
      let n = 0;
      for (let i = off + 1; i < off + len; i++) n = n * 256 + b[i];
      return n;
    }
    const t = str(b, off, len).trim();
    return t ? parseInt(t, 8) : 0;
  };
  let longName: string | undefined, longLink: string | undefined;
  let pax: Record<string, string> = {};
  let zeros = 0;
  while (true) {
    const header = await reader.read(512);
    if (!header) break;
    if (header.every((b) => b === 0)) {
      if (++zeros >= 2) break;
      continue;
    }
    zeros = 0;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    if (sum !== octal(header, 148, 8)) throw new ArchiveError(archive, undefined, "corrupt tar header (bad checksum)");
    const type = String.fromCharCode(header[156] || 0x30);
    const size = octal(header, 124, 12);
    const mode = octal(header, 100, 8);
    const prefix = str(header, 345, 155);
    let name = pax.path ?? longName ?? (prefix ? `${prefix}/${str(header, 0, 100)}` : str(header, 0, 100));
    const link = pax.linkpath ?? longLink ?? str(header, 157, 100);
    const padded = Math.ceil(size / 512) * 512;
    if (type === "L" || type === "K" || type === "x" || type === "g") {
      const body = await reader.read(padded);
      if (!body) throw new ArchiveError(archive, name, "truncated tar");
      const text = dec.decode(body.subarray(0, size));
      if (type === "L") longName = text.replace(/\0+$/, "");
      else if (type === "K") longLink = text.replace(/\0+$/, "");
      else if (type === "x") pax = parsePax(text);
      continue;
    }
    longName = longLink = undefined;
    pax = {};
    name = name.replace(/\/+$/, (m) => (type === "5" ? "" : m));
    if (type === "0" || type === "7") {
      await s.file(name, reader.stream(size), mode);
      await reader.skip(padded - size);
    } else if (type === "5") {
      await s.dir(name);
      await reader.skip(padded);
    } else if (type === "2") {
      await s.symlink(name, link);
      await reader.skip(padded);
    } else if (type === "1") {
      await s.hardlink(name, link);
      await reader.skip(padded);
    } else {
      throw new ArchiveError(
        archive,
        name,
        `unsupported tar entry type ${JSON.stringify(type)} (devices, fifos) refused`,
      );
    }
  }
}

function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const bytes = new TextEncoder().encode(text);
  let i = 0;
  while (i < bytes.length) {
    const space = bytes.indexOf(0x20, i);
    if (space < 0) break;
    const len = Number(new TextDecoder().decode(bytes.subarray(i, space)));
    if (!Number.isFinite(len) || len <= 0) break;
    const record = new TextDecoder().decode(bytes.subarray(space + 1, i + len - 1));
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Exact-size reads over an async byte stream. */
class ByteReader {
  #buf = new Uint8Array(0);
  #done = false;
  constructor(readonly it: AsyncIterator<Uint8Array>) {}

  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n && !this.#done) {
      const r = await this.it.next();
      if (r.done) {
        this.#done = true;
        break;
      }
      const chunk = r.value instanceof Uint8Array ? r.value : new Uint8Array(r.value);
      const merged = new Uint8Array(this.#buf.length + chunk.length);
      merged.set(this.#buf);
      merged.set(chunk, this.#buf.length);
      this.#buf = merged;
    }
    return this.#buf.length >= n;
  }

  async read(n: number): Promise<Uint8Array | undefined> {
    if (!(await this.#fill(n))) {
      if (this.#buf.length === 0) return undefined;
      throw new Error(`truncated archive: wanted ${n} bytes, ${this.#buf.length} left`);
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  async *stream(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill(1))) throw new Error("truncated archive");
      const take = Math.min(left, this.#buf.length);
      yield this.#buf.slice(0, take);
      this.#buf = this.#buf.subarray(take);
      left -= take;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) { /* discard */ }
  }
}

// ---------------------------------------------------------------- zip

interface ZipEntry {
  name: string;
  method: number;
  compressed: number;
  size: number;
  offset: number;
  mode: number;
  isDir: boolean;
  isSymlink: boolean;
}

async function extractZip(archive: string, s: Sink): Promise<void> {
  const fh = await fs.open(archive, "r");
  try {
    const { size } = await fh.stat();
    const read = async (pos: number, len: number) => {
      const buf = new Uint8Array(len);
      const { bytesRead } = await fh.read(buf, 0, len, pos);
      if (bytesRead !== len) throw new ArchiveError(archive, undefined, "truncated zip");
      return new DataView(buf.buffer);
    };
    // End of central directory: in the last 64 KiB + 22 bytes.
    const tailLen = Math.min(size, 65557);
    const tail = await read(size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.getUint32(i, true) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new ArchiveError(archive, undefined, "not a zip (no end of central directory)");
    let count = tail.getUint16(eocd + 10, true);
    let cdSize = tail.getUint32(eocd + 12, true);
    let cdOffset = tail.getUint32(eocd + 16, true);
    // ZIP64 locator just before the EOCD.
    if (eocd >= 20 && tail.getUint32(eocd - 20, true) === 0x07064b50) {
      const z64 = Number(tail.getBigUint64(eocd - 12, true));
      const rec = await read(z64, 56);
      if (rec.getUint32(0, true) !== 0x06064b50) throw new ArchiveError(archive, undefined, "bad ZIP64 record");
      count = Number(rec.getBigUint64(32, true));
      cdSize = Number(rec.getBigUint64(40, true));
      cdOffset = Number(rec.getBigUint64(48, true));
    }
    const cd = await read(cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    const dec = new TextDecoder();
    let p = 0;
    for (let k = 0; k < count; k++) {
      if (cd.getUint32(p, true) !== 0x02014b50) throw new ArchiveError(archive, undefined, "corrupt central directory");
      const method = cd.getUint16(p + 10, true);
      let compressed = cd.getUint32(p + 20, true);
      let usize = cd.getUint32(p + 24, true);
      const nameLen = cd.getUint16(p + 28, true), extraLen = cd.getUint16(p + 30, true);
      const commentLen = cd.getUint16(p + 32, true);
      const madeBy = cd.getUint16(p + 4, true) >> 8;
      const external = cd.getUint32(p + 38, true);
      let offset = cd.getUint32(p + 42, true);
      const name = dec.decode(new Uint8Array(cd.buffer, p + 46, nameLen));
      // ZIP64 extra field.
      let e = p + 46 + nameLen;
      const end = e + extraLen;
      while (e + 4 <= end) {
        const id = cd.getUint16(e, true), len = cd.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          if (usize === 0xffffffff) (usize = Number(cd.getBigUint64(q, true)), q += 8);
          if (compressed === 0xffffffff) (compressed = Number(cd.getBigUint64(q, true)), q += 8);
          if (offset === 0xffffffff) offset = Number(cd.getBigUint64(q, true));
        }
        e += 4 + len;
      }
      const mode = madeBy === 3 ? external >>> 16 : 0;
      entries.push({
        name,
        method,
        compressed,
        size: usize,
        offset,
        mode,
        isDir: name.endsWith("/") || (mode & 0o170000) === 0o040000,
        isSymlink: (mode & 0o170000) === 0o120000,
      });
      p += 46 + nameLen + extraLen + commentLen;
    }
    for (const entry of entries) {
      if (entry.isDir) {
        await s.dir(entry.name);
        continue;
      }
      const local = await read(entry.offset, 30);
      if (local.getUint32(0, true) !== 0x04034b50) throw new ArchiveError(archive, entry.name, "bad local header");
      const start = entry.offset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
      if (entry.method !== 0 && entry.method !== 8) {
        throw new ArchiveError(archive, entry.name, `unsupported compression method ${entry.method}`);
      }
      if (entry.compressed === 0) {
        if (entry.isSymlink) throw new ArchiveError(archive, entry.name, "empty symlink");
        await s.file(entry.name, new Uint8Array(0), entry.mode);
        continue;
      }
      const raw = () => createReadStream("", { fd: fh.fd, start, end: start + entry.compressed - 1, autoClose: false });
      if (entry.isSymlink) {
        const chunks: Uint8Array[] = [];
        await pipeline(
          entry.method === 8 ? raw().pipe(createInflateRaw()) : raw(),
          new Writable({
            write(c, _e, cb) {
              chunks.push(c);
              cb();
            },
          }),
        );
        await s.symlink(entry.name, dec.decode(concat(chunks)));
        continue;
      }
      const body: AsyncIterable<Uint8Array> = entry.method === 8 ? raw().pipe(createInflateRaw()) : raw();
      await s.file(entry.name, body as Readable, entry.mode);
    }
  } finally {
    await fh.close();
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) (out.set(c, o), o += c.length);
  return out;
}
