/**
 * Free disk space: checked before large outputs so that a run stops with the path and the numbers instead of
 * filling the disk, and "No space left on device" errors rewritten to name where strata was writing.
 */
import { dirname } from "node:path";

/**
 * Free bytes (for unprivileged users) on the file system of `path` or its nearest existing ancestor. node:fs is
 * loaded only here (it costs a quarter of a second of start-up, which a cached no-op run must not pay).
 */
export async function freeBytes(path: string): Promise<number | undefined> {
  const { statfsSync } = await import("node:fs");
  let cur = path;
  while (true) {
    try {
      const s = statfsSync(cur);
      return Number(s.bavail) * Number(s.bsize);
    } catch (e) {
      if ((e as NodeJS.ErrnoException)?.code !== "ENOENT") return undefined;
    }
    const up = dirname(cur);
    if (up === cur) return undefined;
    cur = up;
  }
}

export function formatSize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Not enough free space for an output. */
export class DiskSpaceError extends Error {
  override name = "DiskSpaceError";
}

/**
 * Throws a `DiskSpaceError` naming `path` when its file system has less than `bytes` free (plus the reserve
 * `$STRATA_MIN_FREE_MB`, default 50 MiB, so that the lock and logs can still be written).
 */
export async function ensureFreeSpace(path: string, bytes: number, what: string): Promise<void> {
  const reserve = Number(Deno.env.get("STRATA_MIN_FREE_MB") ?? "50") * 2 ** 20;
  const free = await freeBytes(path);
  if (free === undefined) return; // cannot tell: the write itself will say
  const need = Math.max(0, bytes) + (Number.isFinite(reserve) ? reserve : 0);
  if (free < need) {
    throw new DiskSpaceError(
      `${what}: not enough free disk space at ${path}: about ${formatSize(need)} needed ` +
        `(${formatSize(Math.max(0, bytes))} + ${formatSize(need - Math.max(0, bytes))} reserve), ` +
        `${formatSize(free)} free`,
    );
  }
}

/** Whether an error is "No space left on device" (ENOSPC) or a quota overrun. */
export function isNoSpace(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException;
  return err?.code === "ENOSPC" || err?.code === "EDQUOT" ||
    /No space left on device|os error 28\b|Disk quota exceeded|os error 122\b/.test(String(err?.message ?? e));
}

/** The message of a no-space error, naming where it happened and how much is free there. */
export async function noSpaceMessage(path: string, what: string): Promise<string> {
  const free = await freeBytes(path);
  return `${what}: no space left on the device of ${path}${free !== undefined ? ` (${formatSize(free)} free)` : ""}`;
}
