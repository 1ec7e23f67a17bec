/** `strata gc [--dry-run]`: removes cache entries that no results/*\/strata.lock references. */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { defaultCacheDir, findRoot, formatSize, gc, GcLockError } from "../pipeline/mod.ts";

const USAGE = `usage: strata gc [--dry-run] [--force] [--cache DIR]

Removes cache entries that no experiment's results/<experiment>/strata.lock
references, the temporary and scratch folders of runs that are over (killed or
interrupted), and the private LMDB folders ($TMPDIR/strata-lmdb-*) of processes
that are gone; reports the bytes freed. Waits for running runs on the cache.
A lock file it cannot read stops gc (what it refers to is unknown).

options:
  --dry-run     list what would be removed; remove nothing
  --force       collect even when a lock cannot be read (its entries are removed)
  --cache DIR   cache directory (default $STRATA_CACHE or .strata/cache)
  -h, --help    show this help`;

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        "dry-run": { type: "boolean" },
        force: { type: "boolean" },
        cache: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`strata gc: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  const root = findRoot();
  const cacheDir = resolve(parsed.values.cache ?? defaultCacheDir(root));
  const dry = !!parsed.values["dry-run"];
  let r;
  try {
    r = await gc(root, cacheDir, { dryRun: dry, force: !!parsed.values.force });
  } catch (e) {
    if (!(e instanceof GcLockError)) throw e;
    console.error(`strata ${e.message}`);
    return 1;
  }
  for (const w of r.warnings) console.error(`strata gc: warning: ${w}`);
  for (const p of r.removed) console.log(`${dry ? "would remove" : "removed"} ${p}`);
  console.log(
    `strata gc: ${dry ? "would free" : "freed"} ${
      formatSize(r.bytesFreed)
    } (${r.bytesFreed} bytes) in ${r.removed.length} ` +
      `entries; kept ${r.kept} referenced by ${r.locks.length} lock file(s)`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
