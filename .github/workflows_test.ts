/**
 * Lints the GitHub workflows: valid YAML, the shape GitHub expects, every
 * `deno task X` they run exists in deno.json, and the reproduce workflow
 * does what the project relies on (Deno version, cache key, summary,
 * artifact, PR diff whose arguments `deno task diff` accepts).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "yaml";
import { parseDiffArgs } from "../cli/diff.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const workflowsDir = join(root, ".github", "workflows");
const tasks = Object.keys(JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).tasks ?? {});

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Workflow {
  name: string;
  on: Record<string, unknown>;
  env?: Record<string, string>;
  permissions?: Record<string, string>;
  jobs: Record<string, { "runs-on": string; steps: Step[] }>;
}

function load(file: string): Workflow {
  const text = readFileSync(join(workflowsDir, file), "utf8");
  const doc = parseDocument(text, { uniqueKeys: true });
  assert.deepEqual(doc.errors.map((e) => e.message), [], `${file}: YAML errors`);
  assert.deepEqual(doc.warnings.map((e) => e.message), [], `${file}: YAML warnings`);
  // `${{ … }}` expressions are closed.
  for (const [i, line] of text.split("\n").entries()) {
    assert.equal(
      (line.match(/\$\{\{/g) ?? []).length,
      (line.match(/\}\}/g) ?? []).length,
      `${file}:${i + 1}: unbalanced \${{ }}`,
    );
  }
  return doc.toJS() as Workflow;
}

/** Every `deno task NAME ARGS…` in a run script, with its argument text. */
function denoTasks(run: string): { name: string; args: string }[] {
  return [...run.matchAll(/deno task ([\w:-]+)([^\n;&|>]*)/g)].map((m) => ({ name: m[1], args: m[2].trim() }));
}

/** Splits a shell argument string (double-quoted words, plain words), expanding $VARS and ${VARS} from `env`. */
function shellWords(args: string, env: Record<string, string>): string[] {
  const expand = (s: string) => s.replace(/\$\{?(\w+)\}?/g, (_, k) => env[k] ?? "");
  return [...args.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => expand(m[1] ?? m[2]));
}

const files = readdirSync(workflowsDir).filter((f) => /\.ya?ml$/.test(f));

Deno.test("workflows: valid YAML, jobs with steps, every `deno task` exists, actions pinned", () => {
  assert.ok(files.includes("reproduce.yml"));
  for (const file of files) {
    const wf = load(file);
    assert.equal(typeof wf.name, "string", `${file}: name`);
    assert.ok(wf.on && typeof wf.on === "object", `${file}: on`);
    assert.ok(Object.keys(wf.jobs ?? {}).length > 0, `${file}: jobs`);
    for (const [jobName, job] of Object.entries(wf.jobs)) {
      assert.ok(job["runs-on"], `${file}: jobs.${jobName}.runs-on`);
      assert.ok(Array.isArray(job.steps) && job.steps.length, `${file}: jobs.${jobName}.steps`);
      const ids = new Set(job.steps.map((s) => s.id).filter(Boolean));
      for (const [i, step] of job.steps.entries()) {
        const where = `${file}: jobs.${jobName}.steps[${i}]${step.name ? ` (${step.name})` : ""}`;
        assert.ok(!!step.uses !== !!step.run, `${where}: exactly one of uses or run`);
        if (step.uses) assert.match(step.uses, /^[\w.-]+\/[\w./-]+@v?\d[\w.-]*$/, `${where}: pin the action's version`);
        for (const t of denoTasks(step.run ?? "")) {
          assert.ok(tasks.includes(t.name), `${where}: runs \`deno task ${t.name}\`, which deno.json does not define`);
        }
        for (const ref of JSON.stringify(step).matchAll(/steps\.([\w-]+)\./g)) {
          assert.ok(ids.has(ref[1]), `${where}: refers to steps.${ref[1]}, no step has that id`);
        }
      }
    }
  }
});

Deno.test("reproduce.yml: Deno 2.9.6, strata cache on the locks, reproduce, summary, artifact, PR diff comment", () => {
  const wf = load("reproduce.yml");
  assert.ok("push" in wf.on && "pull_request" in wf.on);
  assert.equal(wf.permissions?.["pull-requests"], "write");
  const steps = wf.jobs.reproduce.steps;
  const env: Record<string, string> = { ...(wf.env ?? {}) };
  const uses = (prefix: string) => steps.filter((s) => s.uses?.startsWith(prefix));

  const [deno] = uses("denoland/setup-deno@");
  assert.ok(deno, "installs Deno with denoland/setup-deno");
  assert.equal(String(deno.with?.["deno-version"]).replace("${{ env.DENO_VERSION }}", env.DENO_VERSION), "v2.9.6");

  const cache = uses("actions/cache@").find((s) => s.with?.path === ".strata/cache");
  assert.ok(cache, "restores .strata/cache");
  const key = String(cache.with?.key);
  assert.match(key, /hashFiles\('results\/\*\*\/strata\.lock', 'experiments\/\*\*'\)/);
  assert.ok(cache.with?.["restore-keys"], "falls back to the latest cache");

  const runs = steps.map((s) => s.run ?? "");
  const order = (needle: RegExp) => runs.findIndex((r) => needle.test(r));
  assert.ok(order(/deno task reproduce/) > steps.indexOf(cache), "reproduce runs after the cache is restored");
  assert.ok(order(/>> "\$GITHUB_STEP_SUMMARY"/) > order(/deno task reproduce/), "appends the report to the summary");
  assert.match(runs.join("\n"), /results\/\$\{EXPERIMENT\}\/README\.md/);
  assert.equal(env.EXPERIMENT, "conclr_vs_abinet");

  const artifact = uses("actions/upload-artifact@")[0];
  assert.ok(artifact && String(artifact.with?.path).startsWith("results"), "uploads results/");
  assert.equal(artifact.if, "always()");

  // The PR diff: runs only on pull requests, against the base branch's committed report, with arguments diff accepts.
  const diff = steps.find((s) => /deno task diff/.test(s.run ?? ""))!;
  assert.ok(diff, "runs deno task diff");
  assert.match(diff.if ?? "", /github\.event_name == 'pull_request'/);
  const [call] = denoTasks(diff.run!);
  const words = shellWords(call.args.replace(/"\$\{gate\[@\]\}"/, ""), { ...env, BASE_REF: "main" });
  const parsed = parseDiffArgs(words);
  assert.ok(parsed !== "help");
  assert.equal(parsed.a, "git:origin/main:results/conclr_vs_abinet/report.json");
  assert.equal(parsed.b, "results/conclr_vs_abinet/report.json");
  assert.ok(parsed.missingOk, "a base branch without a report must not fail the PR");
  assert.match(diff.run!, /git fetch .*origin/);
  const comment = steps.find((s) => s.uses?.startsWith("actions/github-script@"));
  assert.ok(comment, "posts the diff as a PR comment");
  assert.match(String(comment.with?.script), /diff\.md/);
  assert.match(comment.if ?? "", /pull_request/);
});
