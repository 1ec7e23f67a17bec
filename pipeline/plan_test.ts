import assert from "node:assert/strict";
import { integer, object, string } from "./schema.ts";
import type { StageKind } from "./stage_kind.ts";
import { planOf, tempProject, write } from "./test_helpers.ts";

const mk = (kind: string, inputs: StageKind<unknown>["inputs"], outputs: string[]): StageKind<unknown> =>
  ({
    kind,
    version: 1,
    description: kind,
    params: object({ seed: integer({ default: 0 }), model: string({ default: "" }) }),
    inputs,
    outputs: Object.fromEntries(outputs.map((o) => [o, { description: o, type: "file" as const }])),
    module: import.meta.url,
    run: () => Promise.resolve(),
  }) as StageKind<unknown>;

const synth = mk("p_synth", {}, ["lmdb"]);
const train = mk("p_train", { train: { description: "d" }, val: { description: "v", optional: true } }, [
  "model",
  "curve",
]);
const evaluate = mk("p_eval", { model: { description: "m" }, datasets: { description: "d", many: true } }, [
  "metrics",
]);
const report = mk("p_report", { metrics: { description: "m", many: true }, curves: { description: "c", many: true } }, [
  "report",
]);
const loop = mk("p_loop", { x: { description: "x", optional: true } }, ["out"]);
const KINDS = [synth, train, evaluate, report, loop];

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

Deno.test("DAG: matrix expansion, readable ids, matching instances and fan-in, topological order", () => {
  const dir = tempProject();
  const f = write(
    dir,
    "e.yaml",
    `params: { seeds: [1, 2] }
stages:
  synth_train: { kind: p_synth }
  synth_test: { kind: p_synth, params: { seed: 9 } }
  train:
    kind: p_train
    matrix: { model: [abinet_vision, conclr_vision], seed: "\${params.seeds}" }
    params: { model: "\${matrix.model}", seed: "\${matrix.seed}" }
    inputs: { train: synth_train.lmdb, val: "path:nope?" }
  evaluate:
    kind: p_eval
    matrix: train
    inputs: { model: train.model, datasets: [synth_test.lmdb, synth_train.lmdb] }
  by_model:
    kind: p_report
    matrix: { model: [abinet_vision, conclr_vision] }
    inputs: { metrics: evaluate.metrics, curves: train.curve }
  report:
    kind: p_report
    inputs: { metrics: evaluate.metrics, curves: train.curve }
`,
  );
  const plan = planOf(f, KINDS);
  const ids = plan.instances.map((i) => i.id);
  assert.equal(ids.length, 2 + 4 + 4 + 2 + 1);
  assert.ok(ids.includes("train[model=abinet_vision,seed=1]"));
  assert.ok(ids.includes("evaluate[model=conclr_vision,seed=2]"));
  for (const inst of plan.instances) {
    for (const d of inst.deps) assert.ok(ids.indexOf(d) < ids.indexOf(inst.id), `${d} before ${inst.id}`);
  }
  const t = plan.byId.get("train[model=conclr_vision,seed=2]")!;
  assert.deepEqual(t.params, { seed: 2, model: "conclr_vision" });
  assert.deepEqual(t.matrix, { model: "conclr_vision", seed: 2 });
  const ev = plan.byId.get("evaluate[model=abinet_vision,seed=2]")!;
  assert.deepEqual(ev.inputs.model.map((r) => r.type === "stage" && r.instance), ["train[model=abinet_vision,seed=2]"]);
  assert.equal(ev.inputs.datasets.length, 2);
  const bm = plan.byId.get("by_model[model=conclr_vision]")!;
  assert.deepEqual(bm.inputs.metrics.map((r) => r.type === "stage" && r.instance), [
    "evaluate[model=conclr_vision,seed=1]",
    "evaluate[model=conclr_vision,seed=2]",
  ]);
  assert.equal(plan.byId.get("report")!.inputs.metrics.length, 4);
  assert.equal(plan.byId.get("report")!.inputs.curves.length, 4);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("cycles are reported with their path", () => {
  const dir = tempProject();
  const f = write(
    dir,
    "c.yaml",
    `stages:
  a: { kind: p_loop, inputs: { x: c.out } }
  b: { kind: p_loop, inputs: { x: a.out } }
  c: { kind: p_loop, inputs: { x: b.out } }
  d: { kind: p_loop, inputs: { x: a.out } }
`,
  );
  const msg = errorOf(() => planOf(f, KINDS));
  assert.match(msg, /cycle: (a → b → c → a|b → c → a → b|c → a → b → c)/);
  write(dir, "self.yaml", "stages:\n  a: { kind: p_loop, inputs: { x: a.out } }\n");
  assert.match(errorOf(() => planOf(`${dir}/self.yaml`, KINDS)), /cycle: a → a/);
  write(dir, "m.yaml", "stages:\n  a: { kind: p_loop, matrix: b }\n  b: { kind: p_loop, matrix: a }\n");
  assert.match(errorOf(() => planOf(`${dir}/m.yaml`, KINDS)), /matrix references form a cycle: a → b → a/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("missing input, unknown stage or output, and many-valued single inputs name the stage", () => {
  const dir = tempProject();
  const cases: [string, RegExp][] = [
    ["stages:\n  t: { kind: p_train }\n", /stage "t": missing required input "train"/],
    [
      "stages:\n  t: { kind: p_train, inputs: { train: nope.lmdb } }\n",
      /2:40: stage "t": input "train" refers to unknown stage "nope"/,
    ],
    [
      "stages:\n  s: { kind: p_synth }\n  t: { kind: p_train, inputs: { train: s.model } }\n",
      /stage "t": input "train": stage "s" \(kind p_synth\) has no output "model"; outputs: lmdb/,
    ],
    [
      "stages:\n  s: { kind: p_synth }\n  t: { kind: p_train, inputs: { tran: s.lmdb } }\n",
      /stage "t": kind "p_train" has no input "tran"; inputs: train, val/,
    ],
    [
      "stages:\n  s: { kind: p_synth, matrix: { seed: [1, 2] } }\n  t: { kind: p_train, inputs: { train: s.lmdb } }\n",
      /stage "t": input "train" takes one value, but "s.lmdb" refers to 2 \(s\[seed=1\], s\[seed=2\]\)/,
    ],
    ["stages:\n  s: { kind: p_synth, matrix: { seed: [] } }\n", /matrix.seed: expected a non-empty list/],
    [
      "stages:\n  s: { kind: p_synth, matrix: { seed: [1] } }\n  t: { kind: p_train, matrix: { seed: [2] }, inputs: { train: s.lmdb } }\n",
      /stage "t\[seed=2\]": input "train": no instance of stage "s" matches matrix \{"seed":2\}/,
    ],
    [
      'stages:\n  s: { kind: p_synth, params: { seed: "${matrix.seed}" } }\n',
      /refers to a matrix, but this stage has none/,
    ],
  ];
  for (const [i, [yaml, re]] of cases.entries()) {
    const f = write(dir, `e${i}.yaml`, yaml);
    assert.match(errorOf(() => planOf(f, KINDS)), re);
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("class 4: documented limits end huge matrices, alias bombs and huge counts with clear errors", () => {
  const dir = tempProject();
  // 100 × 100 × 2 = 20,000 instances: refused before any is made, naming the matrix.
  const values = Array.from({ length: 100 }, (_, i) => i).join(", ");
  write(
    dir,
    "big.yaml",
    `stages:\n  s:\n    kind: p_synth\n    matrix: { seed: [${values}], model: [${values}], x: [a, b] }\n`,
  );
  assert.match(
    errorOf(() => planOf(`${dir}/big.yaml`, KINDS)),
    /big\.yaml:4:13: stage "s": matrix expands to 20000 instances, making 20000 in the experiment, more than the limit of 1000/,
  );
  // Each level refers to the one before ten times: 10^9 values if expanded.
  const bomb = ["params:", '  a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'];
  for (let i = 1; i <= 9; i++) bomb.push(`  a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`);
  bomb.push("stages: {}");
  write(dir, "bomb.yaml", bomb.join("\n") + "\n");
  assert.match(errorOf(() => planOf(`${dir}/bomb.yaml`, KINDS)), /bomb\.yaml:\d+:\d+: YAML: more than 1000 alias/);
  // Integers beyond 2^53 (1e300 is an integer to JavaScript) are refused by the schema.
  write(dir, "huge.yaml", "stages:\n  s: { kind: p_synth, params: { seed: 1e300 } }\n");
  assert.match(
    errorOf(() => planOf(`${dir}/huge.yaml`, KINDS)),
    /huge\.yaml:2:\d+: .*seed: expected integer, got number 1e\+300/,
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("class 4: free disk space is checked with the path in the error; ENOSPC names the cache", async () => {
  const { ensureFreeSpace, DiskSpaceError } = await import("./disk.ts");
  const dir = tempProject();
  await assert.rejects(
    () => ensureFreeSpace(`${dir}/out/lmdb`, 2 ** 60, "synth"),
    (e: Error) =>
      e instanceof DiskSpaceError && e.message.includes(`synth: not enough free disk space at ${dir}/out/lmdb`),
  );
  await ensureFreeSpace(dir, 1024, "small"); // fits
  const { runIn } = await import("./test_helpers.ts");
  const full = {
    ...mk("p_full", {}, ["out"]),
    run() {
      const e = new Error("No space left on device (os error 28)") as Error & { code: string };
      e.code = "ENOSPC";
      throw e;
    },
  } as StageKind<unknown>;
  write(dir, "e.yaml", "stages:\n  f: { kind: p_full }\n");
  const r = await runIn(dir, "e.yaml", [full]);
  assert.equal(r.ok, false);
  assert.ok(
    r.lines.some((l) => l.includes(`FAILED  f`) && l.includes(`no space left on the device of ${dir}/.strata/cache`)),
    r.lines.join("\n"),
  );
  Deno.removeSync(dir, { recursive: true });
});
