/**
 * Publishing: a stage's outputs are copied into its `publish` folder (inside `results/`, checked by the plan),
 * and `.strata-published.json` there records which experiment published which files, so that a later run can
 * remove what a stage no longer produces. Every folder under `results/` belongs to one experiment: the one
 * whose `strata.lock` is in `results/<name>/`, or whose record is in the publish folder. A run refuses to
 * publish into (or write its lock into) a folder another experiment owns, and the record is read as untrusted
 * input: only plain relative paths inside the folder, reached without symlinks, are ever removed.
 */
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { removeQuietly } from "./cache.ts";
import type { ContentDigest, DigestCache } from "./digest.ts";
import { displayPath } from "./experiment.ts";
import { type LockFile, readLock } from "./provenance.ts";

export const PUBLISHED = ".strata-published.json";

/** Who publishes: the experiment's name and its file (as the lock records it). */
export interface Owner {
  experiment: string;
  file: string;
}

interface PublishedRecord {
  version: 2;
  experiment?: string;
  file?: string;
  stages: Record<string, string[]>;
}

/** The experiment file as the lock records it: relative to the root when inside it. */
export function ownerFile(root: string, file: string): string {
  const rel = relative(root, file);
  return rel.startsWith("..") || isAbsolute(rel) ? file : rel.split(sep).join("/");
}

/** A file name from a record or manifest that may be joined to a folder: relative, no `.`/`..`/empty segments. */
export function safeRelative(rel: unknown): rel is string {
  if (typeof rel !== "string" || rel === "" || rel.includes("\\") || rel.includes("\0") || isAbsolute(rel)) {
    return false;
  }
  return rel.split("/").every((p) => p !== "" && p !== "." && p !== "..");
}

/** Whether `dir/rel` is reached without passing through a symlinked folder (which could lead anywhere). */
function noLinkOnTheWay(dir: string, rel: string): boolean {
  const parts = rel.split("/");
  let cur = dir;
  for (const p of parts.slice(0, -1)) {
    cur = join(cur, p);
    try {
      if (Deno.lstatSync(cur).isSymlink) return false;
    } catch {
      return true; // absent: nothing below it either
    }
  }
  return true;
}

/** Reads a publish record; anything malformed is dropped (and said), never acted upon. */
export function readPublished(dest: string, warn: (msg: string) => void = () => {}): PublishedRecord | undefined {
  const path = join(dest, PUBLISHED);
  let data: unknown;
  try {
    data = JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) warn(`ignoring ${displayPath(path)}: not readable JSON`);
    return undefined;
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    warn(`ignoring ${displayPath(path)}: not a publish record`);
    return undefined;
  }
  const obj = data as Record<string, unknown>;
  // Version 1 was `{stageId: files}` without an owner.
  const rawStages = obj.version === 2 ? obj.stages : obj;
  const stages: Record<string, string[]> = {};
  let dropped = 0;
  if (rawStages && typeof rawStages === "object" && !Array.isArray(rawStages)) {
    for (const [id, files] of Object.entries(rawStages as Record<string, unknown>)) {
      if (id === "version" || !Array.isArray(files)) continue;
      const ok = files.filter((f) => safeRelative(f) && f !== PUBLISHED);
      dropped += files.length - ok.length;
      stages[id] = ok as string[];
    }
  }
  if (dropped) warn(`ignoring ${dropped} unsafe path(s) in ${displayPath(path)} (outside the folder)`);
  return {
    version: 2,
    ...(obj.version === 2 && typeof obj.experiment === "string" ? { experiment: obj.experiment } : {}),
    ...(obj.version === 2 && typeof obj.file === "string" ? { file: obj.file } : {}),
    stages,
  };
}

const same = (a: Owner, b: Partial<Owner>) => a.experiment === b.experiment && a.file === b.file;

function describeOwner(o: Partial<Owner>): string {
  return `experiment "${o.experiment ?? "?"}"${o.file ? ` (${o.file})` : ""}`;
}

/**
 * Refuses, before anything runs, to write the lock or publish into folders another experiment owns:
 * `results/<name>/strata.lock` of another file (two experiments with one `name:`), a publish folder inside
 * another experiment's `results/<its name>/`, or one whose record names another experiment.
 */
export function checkOwnership(root: string, owner: Owner, lockFile: string, publishDirs: string[]): void {
  const results = join(root, "results");
  const foreignLock = (lockPath: string): LockFile | "unreadable" | undefined => {
    try {
      Deno.statSync(lockPath);
    } catch {
      return undefined;
    }
    const lock = readLock(lockPath);
    if (!lock) return "unreadable";
    return same(owner, lock) ? undefined : lock;
  };
  const own = foreignLock(lockFile);
  if (own === "unreadable") {
    throw new Error(
      `${displayPath(lockFile)} is not a readable strata lock, so strata cannot tell whose it is; ` +
        `move it away or delete it, then run again`,
    );
  }
  if (own) {
    throw new Error(
      `${displayPath(dirname(lockFile))} belongs to ${describeOwner(own)}, not to ${owner.file}: two experiments ` +
        `share the name "${owner.experiment}"; give one of them another \`name:\` (or delete that folder if the ` +
        `file was moved)`,
    );
  }
  const rec = readPublished(dirname(lockFile));
  if (rec?.experiment !== undefined && !same(owner, rec)) {
    throw new Error(
      `${displayPath(dirname(lockFile))} holds files published by ${describeOwner(rec)}; give this experiment ` +
        `another \`name:\` or that stage another \`publish:\``,
    );
  }
  for (const dest of publishDirs) {
    const top = join(results, relative(results, dest).split(sep)[0]);
    if (top !== dirname(lockFile)) {
      const other = foreignLock(join(top, "strata.lock"));
      if (other) {
        throw new Error(
          `publish: ${displayPath(dest)} is inside ${displayPath(top)}, which belongs to ` +
            `${other === "unreadable" ? "another experiment (unreadable strata.lock)" : describeOwner(other)}; ` +
            `publish into results/${owner.experiment}/ instead`,
        );
      }
    }
    const r = readPublished(dest);
    if (r?.experiment !== undefined && !same(owner, r)) {
      throw new Error(
        `publish: ${displayPath(dest)} holds files published by ${describeOwner(r)}; publish this experiment ` +
          `elsewhere (e.g. results/${owner.experiment}/)`,
      );
    }
    checkInsideResults(root, dest);
  }
}

/** The publish folder (or its nearest existing ancestor) must really be inside results/ (no symlink out). */
function checkInsideResults(root: string, dest: string): void {
  let resultsReal: string;
  try {
    resultsReal = Deno.realPathSync(join(root, "results"));
  } catch {
    return; // no results/ yet: nothing can lead out of it
  }
  let cur = dest;
  while (true) {
    try {
      const real = Deno.realPathSync(cur);
      const rel = relative(resultsReal, real);
      if (rel.startsWith("..") || isAbsolute(rel)) {
        throw new Error(`publish: ${displayPath(dest)} leads out of results/ (through a symlink to ${real})`);
      }
      return;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const up = dirname(cur);
    if (up === cur) return;
    cur = up;
  }
}

/** Copies a stage's outputs into `dest`: dir outputs merged in, file outputs by name. Returns `dest`. */
export function publishOutputs(
  dest: string,
  stageId: string,
  owner: Owner,
  entryDir: string,
  outputs: Record<string, ContentDigest>,
  digests: DigestCache,
  warn: (msg: string) => void,
): string {
  Deno.mkdirSync(dest, { recursive: true });
  const files: string[] = [];
  for (const [name, out] of Object.entries(outputs)) {
    const src = join(entryDir, "outputs", name);
    if (out.type === "file") {
      copyIfChanged(src, join(dest, name), out.files[0][2], digests);
      files.push(name);
    } else {
      for (const [rel, , sha] of out.files) {
        if (!safeRelative(rel) || !noLinkOnTheWay(dest, rel)) throw new Error(`publish: unsafe file name ${rel}`);
        copyIfChanged(join(src, rel), join(dest, rel), sha, digests);
        files.push(rel);
      }
    }
  }
  prunePublished(dest, stageId, owner, files, warn);
  return dest;
}

/**
 * Records which files `stageId` published into `dest` and removes those it published before but not now (a
 * chart a run no longer draws must not stay beside the new report). Files other stages published are kept.
 */
export function prunePublished(
  dest: string,
  stageId: string,
  owner: Owner,
  files: string[],
  warn: (msg: string) => void,
): void {
  const record = join(dest, PUBLISHED);
  const prev = readPublished(dest, warn);
  if (prev?.experiment !== undefined && !same(owner, prev)) return; // not ours (checked before the run)
  const published = prev?.stages ?? {};
  const now = new Set(files);
  const others = new Set(Object.entries(published).filter(([id]) => id !== stageId).flatMap(([, f]) => f));
  for (const old of published[stageId] ?? []) {
    if (now.has(old) || others.has(old) || !noLinkOnTheWay(dest, old)) continue;
    const target = resolve(dest, old);
    const rel = relative(dest, target);
    if (rel.startsWith("..") || isAbsolute(rel) || rel === "strata.lock") continue;
    removeQuietly(target);
  }
  if (files.length) published[stageId] = [...files].sort();
  else delete published[stageId];
  if (Object.keys(published).length === 0) {
    removeQuietly(record);
    return;
  }
  Deno.mkdirSync(dest, { recursive: true });
  const out: PublishedRecord = { version: 2, experiment: owner.experiment, file: owner.file, stages: published };
  const tmp = `${record}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(out, null, 2) + "\n");
  Deno.renameSync(tmp, record);
}

function copyIfChanged(src: string, dest: string, sha: string, digests: DigestCache): void {
  try {
    const st = Deno.statSync(dest);
    const hit = digests.lookup(dest, st);
    if (hit && hit.sha256 === sha) return;
  } catch { /* absent */ }
  Deno.mkdirSync(dirname(dest), { recursive: true });
  const tmp = `${dest}.${Deno.pid}.tmp`;
  Deno.copyFileSync(src, tmp);
  // Keep the entry's (old) mtime so that the copy's digest can be trusted by stat next time.
  const srcSt = Deno.statSync(src);
  if (srcSt.mtime) Deno.utimeSync(tmp, srcSt.atime ?? srcSt.mtime, srcSt.mtime);
  Deno.renameSync(tmp, dest);
  digests.store(dest, Deno.statSync(dest), Date.now(), sha);
}
