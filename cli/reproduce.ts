/**
 * `strata reproduce`: runs the default experiment (experiments/conclr_vs_abinet.yaml,
 * or the built-in experiments/demo.yaml until it exists) and prints the path of
 * the published report.
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseRunArgs, RUN_USAGE, runExperiment } from "./run.ts";

const USAGE = `usage: strata reproduce [run options]

Runs experiments/conclr_vs_abinet.yaml (or experiments/demo.yaml when it does
not exist) like \`strata run\`, then prints the path of the published report
(README.md in the publish directory of the last stage that publishes).

${RUN_USAGE.slice(RUN_USAGE.indexOf("options:"))}`;

export function defaultExperiment(): string {
  const dir = fileURLToPath(new URL("../experiments/", import.meta.url));
  const main = join(dir, "conclr_vs_abinet.yaml");
  try {
    Deno.statSync(main);
    return main;
  } catch {
    return join(dir, "demo.yaml");
  }
}

export async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const experiment = defaultExperiment();
  const a = parseRunArgs([relative(Deno.cwd(), experiment), ...args]);
  if (a === "help") {
    console.log(USAGE);
    return 0;
  }
  if (typeof a === "string") {
    console.error(`strata reproduce: ${a}\n\n${USAGE}`);
    return 2;
  }
  const { code, result } = await runExperiment(a);
  if (!result) return code;
  const published = result.outcomes.filter((o) => o.published);
  const last = published[published.length - 1];
  if (last) {
    const readme = join(last.published!, "README.md");
    let exists = false;
    try {
      exists = Deno.statSync(readme).isFile;
    } catch { /* not written */ }
    const shown = relative(Deno.cwd(), exists ? readme : last.published!) || ".";
    console.log(exists ? `report: ${shown}` : `published: ${shown} (no README.md in it)`);
  } else if (!a.dryRun) {
    console.error("strata reproduce: no stage published a report");
  }
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
