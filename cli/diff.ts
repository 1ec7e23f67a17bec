/**
 * `deno task diff A B`: compares two experiments' published reports.
 *
 * A and B may each be an experiment file (`experiments/x.yaml` → its report
 * stage's `publish` dir, else `results/<name>/`), a results directory, a
 * `report.json`, a `strata.lock` (with the report.json beside it when there
 * is one), or a git revision `git:REV:path` of one of those files. Prints
 * Markdown (or `--json`): the params that differ, metrics with old, new,
 * delta and an arrow for better/worse, and stage keys that changed.
 * `--fail-if-worse METRIC=THRESHOLD` exits 1 when a metric got worse by more
 * than THRESHOLD.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";

const USAGE = `usage: deno task diff A B [options]

A and B (old and new): experiment YAML files, results directories, report.json or
strata.lock files, or git revisions such as git:origin/main:results/conclr_vs_abinet/report.json

options:
  --json                       print the diff as JSON
  --fail-if-worse M=THRESHOLD  exit 1 when metric M got worse by more than THRESHOLD
                               (repeatable; M is [GROUP/][DATASET.]METRIC with * wildcards,
                               e.g. iiit5k.cwr=0.01, '*.cwr=0.02', model=conclr_vision/svt.ccr=0)
  --metrics a,b                metrics to compare (default: the reports' headline metrics)
  --all                        compare every metric (accuracy, 1-NED, confidence, length, count)
  --missing-ok                 when A or B does not exist (e.g. no report on the base branch yet),
                               say so and exit 0 instead of 2
  --digits N                   decimals of rates (default 3)
  -h, --help                   this help

exit status: 0 no gate failed, 1 a --fail-if-worse gate failed, 2 usage or input error`;

export interface DiffArgs {
  a: string;
  b: string;
  json: boolean;
  failIfWorse: string[];
  metrics?: string[];
  all: boolean;
  missingOk: boolean;
  digits: number;
}

/** Parses the command line; throws with a usage message on errors. */
export function parseDiffArgs(args: string[]): DiffArgs | "help" {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      "fail-if-worse": { type: "string", multiple: true, default: [] },
      metrics: { type: "string" },
      all: { type: "boolean", default: false },
      "missing-ok": { type: "boolean", default: false },
      digits: { type: "string", default: "3" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (positionals.length !== 2) throw new Error(`expected two reports to compare, got ${positionals.length}`);
  const digits = Number(values.digits);
  if (!Number.isInteger(digits) || digits < 0 || digits > 8) {
    throw new Error(`--digits: expected 0..8, got ${values.digits}`);
  }
  return {
    a: positionals[0],
    b: positionals[1],
    json: values.json,
    failIfWorse: values["fail-if-worse"],
    metrics: values.metrics ? values.metrics.split(",").map((m) => m.trim()).filter(Boolean) : undefined,
    all: values.all,
    missingOk: values["missing-ok"],
    digits,
  };
}

export class MissingInput extends Error {}

interface Loaded {
  source: string;
  report?: import("../report/model.ts").ReportData;
  lock?: import("../report/diff.ts").LockLike;
}

function git(args: string[], cwd: string): string | undefined {
  const out = new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" }).outputSync();
  return out.success ? new TextDecoder().decode(out.stdout) : undefined;
}

function projectRoot(from: string): string {
  let dir = resolve(from);
  for (let i = 0; i < 30; i++) {
    if (existsSync(join(dir, "deno.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return Deno.cwd();
}

function classify(json: unknown, where: string): Omit<Loaded, "source"> {
  if (json && typeof json === "object") {
    const o = json as Record<string, unknown>;
    if (typeof o.format === "string" && o.format.startsWith("strata-report/")) {
      return { report: json as import("../report/model.ts").ReportData };
    }
    if (o.stages && typeof o.stages === "object") return { lock: json as import("../report/diff.ts").LockLike };
  }
  throw new Error(`${where}: neither a strata report.json nor a strata.lock`);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not JSON (${e instanceof Error ? e.message : e})`);
  }
}

/** Where an experiment file publishes its report: the report stage's `publish`, else `results/<name>`. */
async function experimentResults(file: string): Promise<string> {
  const { loadExperimentAsync } = await import("../pipeline/experiment.ts");
  let exp;
  try {
    exp = await loadExperimentAsync(file); // follows `extends`
  } catch (e) {
    throw new Error(`${file}: cannot read the experiment (${e instanceof Error ? e.message : e})`);
  }
  const root = projectRoot(dirname(file));
  const stages = (exp.tree.stages ?? {}) as Record<string, Record<string, unknown>>;
  for (const s of Object.values(stages)) {
    if (s && s.kind === "report" && typeof s.publish === "string" && !s.publish.includes("${")) {
      return join(root, s.publish);
    }
  }
  return join(root, "results", exp.name);
}

/** Loads one side of the diff. Throws MissingInput when the thing named does not exist. */
export async function loadSide(spec: string, cwd = Deno.cwd()): Promise<Loaded> {
  const gitMatch = /^git:([^:]+):(.+)$/.exec(spec);
  if (gitMatch) {
    const [, rev, path] = gitMatch;
    const text = git(["show", `${rev}:${path}`], cwd);
    if (text === undefined) throw new MissingInput(`${spec}: no such file at that revision (git show ${rev}:${path})`);
    const loaded = classify(parseJson(text, spec), spec);
    if (loaded.lock && !loaded.report) {
      const sibling = git(["show", `${rev}:${dirname(path)}/report.json`], cwd);
      if (sibling !== undefined) return { source: spec, ...classify(parseJson(sibling, spec), spec), ...loaded };
    } else if (loaded.report) {
      const sibling = git(["show", `${rev}:${dirname(path)}/strata.lock`], cwd);
      if (sibling !== undefined) {
        try {
          return { source: spec, ...loaded, ...classify(parseJson(sibling, spec), spec) };
        } catch {
          // a broken lock beside a report: compare the reports alone
        }
      }
    }
    return { source: spec, ...loaded };
  }

  const path = resolve(cwd, spec);
  if (!existsSync(path)) throw new MissingInput(`${spec}: not found`);
  let dir: string;
  if (/\.ya?ml$/i.test(path)) dir = await experimentResults(path);
  else if (statSync(path).isDirectory()) dir = path;
  else {
    const loaded = classify(parseJson(await Deno.readTextFile(path), spec), spec);
    const siblingName = loaded.report ? "strata.lock" : "report.json";
    const sibling = join(dirname(path), siblingName);
    if (existsSync(sibling)) {
      try {
        return { source: spec, ...classify(parseJson(await Deno.readTextFile(sibling), sibling), sibling), ...loaded };
      } catch {
        // unreadable sibling: compare what was named
      }
    }
    return { source: spec, ...loaded };
  }
  const reportFile = join(dir, "report.json");
  const lockFile = join(dir, "strata.lock");
  if (!existsSync(reportFile) && !existsSync(lockFile)) {
    throw new MissingInput(`${spec}: no report.json or strata.lock in ${dir} (run the experiment first)`);
  }
  const out: Loaded = { source: spec };
  if (existsSync(reportFile)) {
    Object.assign(out, classify(parseJson(await Deno.readTextFile(reportFile), reportFile), reportFile));
  }
  if (existsSync(lockFile)) {
    try {
      Object.assign(out, classify(parseJson(await Deno.readTextFile(lockFile), lockFile), lockFile));
    } catch (e) {
      if (!out.report) throw e;
    }
  }
  return out;
}

export async function main(args: string[]): Promise<number> {
  let parsed: DiffArgs | "help";
  try {
    parsed = parseDiffArgs(args);
  } catch (e) {
    console.error(`diff: ${e instanceof Error ? e.message : e}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === "help") {
    console.log(USAGE);
    return 0;
  }
  const { diffReports, parseRule, renderDiffMarkdown } = await import("../report/diff.ts");
  const { METRIC_NAMES } = await import("../report/model.ts");
  let rules;
  try {
    rules = parsed.failIfWorse.map(parseRule);
    const unknown = (parsed.metrics ?? []).filter((m) => !METRIC_NAMES.includes(m));
    if (unknown.length) throw new Error(`--metrics: unknown ${unknown.join(", ")}; known: ${METRIC_NAMES.join(", ")}`);
  } catch (e) {
    console.error(`diff: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
  const sides: Loaded[] = [];
  for (const spec of [parsed.a, parsed.b]) {
    try {
      sides.push(await loadSide(spec));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (e instanceof MissingInput && parsed.missingOk) {
        if (parsed.json) console.log(JSON.stringify({ missing: spec, message }, null, 2));
        else console.log(`## strata diff\n\nNothing to compare: ${message.replace(/`/g, "'")}.\n`);
        return 0;
      }
      console.error(`diff: ${message}`);
      return 2;
    }
  }
  const [a, b] = sides;
  const diff = diffReports(a, b, {
    metrics: parsed.all ? METRIC_NAMES : parsed.metrics,
    rules,
    digits: parsed.digits,
  });
  console.log(parsed.json ? JSON.stringify(diff, null, 2) : renderDiffMarkdown(diff));
  for (const f of diff.gate.failures) {
    console.error(
      `diff: ${f.rule}: ${f.delta.group_label} ${f.delta.dataset}.${f.delta.metric} ${
        f.drop === Infinity ? "is missing in B" : `dropped by ${f.drop.toFixed(parsed.digits + 1)}`
      }`,
    );
  }
  for (const u of diff.gate.unmatched) console.error(`diff: warning: --fail-if-worse ${u} matched no metric in A`);
  return diff.gate.failures.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
