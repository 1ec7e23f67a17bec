/** `strata gc [--dry-run]`: removes cache entries that no results/*\/strata.lock references. */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { defaultCacheDir, findRoot, formatBytes, gc } from "../pipeline/mod.ts";

const USAGE = `usage: strata gc [--dry-run] [--cache DIR]

Removes cache entries that no experiment's results/<experiment>/strata.lock
references (and temporary directories of runs killed over a day ago), and
reports the bytes freed.

options:
  --dry-run     list what would be removed; remove nothing
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
  const r = await gc(root, cacheDir, dry);
  for (const p of r.removed) console.log(`${dry ? "would remove" : "removed"} ${p}`);
  console.log(
    `strata gc: ${dry ? "would free" : "freed"} ${
      formatBytes(r.bytesFreed)
    } (${r.bytesFreed} bytes) in ${r.removed.length} ` +
      `entries; kept ${r.kept} referenced by ${r.locks.length} lock file(s)`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
