import assert from "node:assert/strict";
import { join } from "node:path";
import { ExperimentError, loadExperiment } from "./experiment.ts";
import { integer, number, object, string } from "./schema.ts";
import type { StageKind } from "./stage_kind.ts";
import { planOf, tempProject, write } from "./test_helpers.ts";

const trainKind: StageKind<unknown> = {
  kind: "t_train",
  version: 1,
  description: "test",
  params: object({
    lr: number({ min: 0, default: 1e-3 }),
    steps: integer({ min: 1, default: 10 }),
    model: string({ default: "m" }),
    opt: object({ beta: number({ default: 0.9 }) }),
  }),
  inputs: {},
  outputs: { model: { description: "m", type: "file" } },
  module: import.meta.url,
  run: () => Promise.resolve(),
} as StageKind<unknown>;

function throwsWith(f: () => unknown, ...parts: (string | RegExp)[]): void {
  try {
    f();
  } catch (e) {
    const msg = (e as Error).message;
    for (const p of parts) {
      if (typeof p === "string") assert.ok(msg.includes(p), `expected ${JSON.stringify(p)} in: ${msg}`);
      else assert.match(msg, p);
    }
    return;
  }
  assert.fail("expected an error");
}

Deno.test("schema errors name file:line:col, the key and what was expected", () => {
  const dir = tempProject();
  const f = write(
    dir,
    "e.yaml",
    `stages:
  train:
    kind: t_train
    params:
      steps: 10
      lr: fast
`,
  );
  throwsWith(() => planOf(f, [trainKind]), "e.yaml:6:11", "stages.train.params.lr", "expected number ≥ 0", '"fast"');
  write(dir, "u.yaml", "stages:\n  train:\n    kind: t_train\n    params:\n      stpes: 3\n");
  throwsWith(
    () => planOf(join(dir, "u.yaml"), [trainKind]),
    "u.yaml:5:14",
    "stages.train.params.stpes",
    'did you mean "steps"',
  );
  write(dir, "n.yaml", "stages:\n  train:\n    kind: t_train\n    params:\n      opt: { beta: [1] }\n");
  throwsWith(() => planOf(join(dir, "n.yaml"), [trainKind]), "n.yaml:5:20", "params.opt.beta", "expected number");
  write(dir, "s.yaml", "stages:\n  train:\n    kind: t_train\n    parms: {}\n");
  throwsWith(() => planOf(join(dir, "s.yaml"), [trainKind]), "s.yaml:4:12", 'unknown key "parms"');
  write(dir, "y.yaml", "stages:\n  train: [\n");
  throwsWith(() => planOf(join(dir, "y.yaml"), [trainKind]), /y\.yaml:\d+:\d+: YAML: /);
  write(dir, "dup.yaml", "stages:\n  train: { kind: t_train }\n  train: { kind: t_train }\n");
  throwsWith(() => planOf(join(dir, "dup.yaml"), [trainKind]), "dup.yaml:3:3: YAML: Map keys must be unique");
  write(dir, "k.yaml", "stages:\n  train:\n    kind: t_trian\n");
  throwsWith(
    () => planOf(join(dir, "k.yaml"), [trainKind]),
    "k.yaml:3:11",
    'stage "train"',
    'unknown stage kind "t_trian"',
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("extends deep-merges maps, replaces lists and scalars, relative to the extending file; cycles reported", () => {
  const dir = tempProject();
  write(
    dir,
    "base/base.yaml",
    `description: base
params: { a: 1, list: [1, 2, 3], nested: { x: 1, y: 2 } }
stages:
  train:
    kind: t_train
    params: { lr: 0.1, steps: 5 }
`,
  );
  const f = write(
    dir,
    "exp/child.yaml",
    `extends: ../base/base.yaml
params: { list: [9], nested: { y: 3 } }
stages:
  train:
    params: { steps: 7 }
`,
  );
  const exp = loadExperiment(f);
  assert.equal(exp.name, "child");
  assert.equal(exp.description, "base");
  assert.deepEqual(exp.tree.params, { a: 1, list: [9], nested: { x: 1, y: 3 } });
  const plan = planOf(f, [trainKind]);
  assert.deepEqual(plan.instances[0].params, { lr: 0.1, steps: 7, model: "m", opt: { beta: 0.9 } });
  // An error in a value from the base file names the base file.
  write(dir, "exp/bad.yaml", "extends: ../base/base.yaml\nstages:\n  train:\n    params: { steps: 0 }\n");
  throwsWith(() => planOf(join(dir, "exp/bad.yaml"), [trainKind]), "bad.yaml:4:22", "integer ≥ 1");
  write(dir, "c1.yaml", "extends: c2.yaml\nstages: {}\n");
  write(dir, "c2.yaml", "extends: c1.yaml\n");
  throwsWith(() => loadExperiment(join(dir, "c1.yaml")), "extends cycle", "c1.yaml → ", "c2.yaml → ", /c1\.yaml$/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("params interpolation keeps types for whole-string references and --set overrides are typed", () => {
  const dir = tempProject();
  const f = write(
    dir,
    "e.yaml",
    `params: { steps: 600, name: abc, lr: 0.5 }
stages:
  train:
    kind: t_train
    params: { steps: "\${params.steps}", model: "m-\${params.name}-\${params.steps}", lr: "\${params.lr}" }
`,
  );
  let plan = planOf(f, [trainKind]);
  assert.deepEqual(plan.instances[0].params, { lr: 0.5, steps: 600, model: "m-abc-600", opt: { beta: 0.9 } });
  plan = planOf(f, [trainKind], ["params.steps=100", "stages.train.params.lr=3e-4", "params.name=007"]);
  assert.deepEqual(plan.instances[0].params, { lr: 3e-4, steps: 100, model: "m-007-100", opt: { beta: 0.9 } });
  plan = planOf(f, [trainKind], ["stages.train.params.opt.beta=0.5"]);
  assert.equal((plan.instances[0].params.opt as { beta: number }).beta, 0.5);
  throwsWith(
    () => planOf(f, [trainKind], ["stages.train.params.lr=fast"]),
    "--set stages.train.params.lr",
    "expected number",
  );
  throwsWith(() => planOf(f, [trainKind], ["stages.train.params.lrr=1"]), 'no param "lrr"', "lr, steps");
  throwsWith(() => planOf(f, [trainKind], ["stages.nope.params.lr=1"]), 'no stage "nope"');
  throwsWith(() => planOf(f, [trainKind], ["params.steps=0"]), "--set params.steps", "integer ≥ 1");
  write(dir, "r.yaml", 'stages:\n  train:\n    kind: t_train\n    params: { steps: "${params.nope}" }\n');
  throwsWith(() => planOf(join(dir, "r.yaml"), [trainKind]), "r.yaml:4:22", 'no such param "nope"');
  assert.ok(new ExperimentError("x") instanceof Error);
  Deno.removeSync(dir, { recursive: true });
});
