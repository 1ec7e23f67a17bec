/**
 * `deno task stats PATH [--json] [--limit N] [--top N]`: statistics of an
 * LMDB directory or an image folder, printed as Markdown whose first line
 * is the sample count (or as JSON with --json).
 */
import { parseArgs } from "node:util";

const USAGE = `usage: deno task stats PATH [--json] [--limit N] [--top N]

PATH is an STR LMDB directory (with data.mdb) or an image folder
(IMG/ + label/, labels.tsv, gt.txt, or plain images).

  --json      print the statistics as JSON
  --limit N   examine only the first N samples (the count stays exact)
  --top N     characters in the frequency table (default 100)`;

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        json: { type: "boolean" },
        limit: { type: "string" },
        top: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`stats: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const int = (s: string | undefined, name: string): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be an integer ≥ 1, got ${JSON.stringify(s)}`);
    return n;
  };
  try {
    const { computeStats, statsMarkdown } = await import("../data/stats.ts");
    const stats = await computeStats(positionals[0], { limit: int(values.limit, "limit") });
    if (values.json) console.log(JSON.stringify(stats, null, 1));
    else console.log(statsMarkdown(stats, { topChars: int(values.top, "top") }).trimEnd());
    return 0;
  } catch (e) {
    console.error(`stats: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
