/**
 * Which process made a temporary folder, and whether it is still running: a record of the pid, the host and
 * the process's start time (so that a reused pid is not taken for the original process). `gc` removes
 * temporary folders only of processes known to be dead.
 */
import { join } from "node:path";

export interface ProcessToken {
  pid: number;
  host: string;
  /** Start time of the process as the OS gives it (Linux: clock ticks since boot), or "" when unknown. */
  start: string;
}

export const OWNER_FILE = "strata-owner.json";

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}

function startTime(pid: number): string | undefined {
  if (Deno.build.os !== "linux") return "";
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined; // no such process
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? "";
}

export function selfToken(): ProcessToken {
  return { pid: Deno.pid, host: hostname(), start: startTime(Deno.pid) ?? "" };
}

/** true: running; false: known to be gone; undefined: cannot tell (another host, another OS). */
export function isAlive(t: ProcessToken): boolean | undefined {
  if (typeof t?.pid !== "number" || t.host !== hostname()) return undefined;
  if (Deno.build.os !== "linux") return undefined;
  const start = startTime(t.pid);
  if (start === undefined) return false;
  return t.start === "" || start === t.start;
}

/** Writes the owner record of a temporary folder made by this process. */
export function markOwner(dir: string): void {
  try {
    Deno.writeTextFileSync(join(dir, OWNER_FILE), JSON.stringify(selfToken()) + "\n");
  } catch { /* the folder is then removed only once it is old */ }
}

/** The owner record of a folder, or undefined when absent or unreadable. */
export function readOwner(dir: string): ProcessToken | undefined {
  try {
    const t = JSON.parse(Deno.readTextFileSync(join(dir, OWNER_FILE)));
    return t && typeof t.pid === "number" ? t : undefined;
  } catch {
    return undefined;
  }
}
