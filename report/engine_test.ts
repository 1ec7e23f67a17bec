/**
 * The report stage inside the real engine: throwaway train/evaluate kinds
 * write curves and metrics.json in the shapes tasks/train.ts and
 * tasks/evaluate.ts write; the report groups the matrix runs by model, is
 * published with the lock, stays cached on a rerun, and `diff` compares the
 * published reports of two settings.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { runIn, tempProject, write } from "../pipeline/test_helpers.ts";
import * as s from "../pipeline/schema.ts";
import type { StageKind } from "../pipeline/stage_kind.ts";
import reportKind from "../tasks/report.ts";
import { main as diffMain } from "../cli/diff.ts";
import { parseTables, referencedFiles, tableProblems } from "./markdown.ts";

const fakeTrain: StageKind<{ model: string; seed: number; steps: number }> = {
  kind: "fake_train",
  version: 1,
  description: "writes a curve",
  params: s.object({ model: s.string(), seed: s.integer(), steps: s.integer() }) as never,
  inputs: {},
  outputs: { curve: { type: "file", description: "JSONL" } },
  module: import.meta.url,
  async run(ctx) {
    const lines = [];
    for (let step = 10; step <= ctx.params.steps; step += 10) {
      lines.push(JSON.stringify({
        step,
        loss: 3 / step + ctx.params.seed / 100,
        loss_parts: {},
        lr: 1e-4,
        samples_per_s: 10,
        elapsed_s: step / 10,
        ...(step % 20 === 0 ? { val: { word_accuracy: step / (ctx.params.steps + 10) } } : {}),
      }));
    }
    await Deno.writeTextFile(ctx.output("curve"), lines.join("\n") + "\n");
  },
};

const fakeEvaluate: StageKind<{ protocol: number }> = {
  kind: "fake_evaluate",
  version: 1,
  description: "writes metrics.json",
  params: s.object({ protocol: s.integer({ default: 36 }) }) as never,
  inputs: { model: { description: "a curve standing in for the model" } },
  outputs: { metrics: { type: "file", description: "metrics.json" } },
  module: import.meta.url,
  async run(ctx) {
    const [model] = ctx.inputs.model;
    const p = model.params as { model: string; seed: number; steps: number };
    const acc = (p.model === "conclr_vision" ? 0.5 : 0.45) + p.seed / 400 + p.steps / 10000;
    const m = (n: number) => ({
      samples: n,
      word_accuracy: acc,
      cwr: acc,
      ccr: acc + 0.1,
      one_minus_ned: acc + 0.2,
      mean_confidence: 0.7,
      mean_label_length: 5.5,
    });
    await Deno.writeTextFile(
      ctx.output("metrics"),
      JSON.stringify({
        format: "strata-metrics-v1",
        model: { stage: model.stageId, matrix: model.matrix, params: p, family: p.model, config: {}, parameters: 1000 },
        backend: "cpu",
        tfjs: "4.22.0",
        datasets: [{ name: "synth_test", stage: "synth_test", ...m(200) }, {
          name: "iiit5k",
          stage: "iiit5k",
          ...m(300),
        }],
        combined: m(500),
      }),
    );
  },
};

const EXPERIMENT = `name: rep_e2e
description: Report stage end to end.
params: { steps: 60 }
stages:
  train:
    kind: fake_train
    matrix: { model: [abinet_vision, conclr_vision], seed: [1, 2] }
    params: { model: "\${matrix.model}", seed: "\${matrix.seed}", steps: "\${params.steps}" }
  evaluate:
    kind: fake_evaluate
    matrix: train
    inputs: { model: train.curve }
  report:
    kind: report
    publish: results/rep_e2e
    params:
      title: ConCLR-Vision vs ABINet-Vision (engine test)
      description: Report stage end to end.
      note: numbers from fake stages
      headline: { columns: [iiit5k, synth_test] }
    inputs: { metrics: evaluate.metrics, curves: train.curve }
`;

Deno.test("report stage in the engine: grouped by model over seeds, published, cached, diffable", async () => {
  const root = tempProject();
  try {
    write(root, "deno.json", "{}\n");
    write(root, "experiments/rep_e2e.yaml", EXPERIMENT);
    const kinds = [fakeTrain, fakeEvaluate, reportKind] as StageKind<unknown>[];
    const first = await runIn(root, "experiments/rep_e2e.yaml", kinds);
    assert.ok(first.ok, first.lines.join("\n"));
    const published = join(root, "results", "rep_e2e");
    const readme = await Deno.readTextFile(join(published, "README.md"));
    assert.deepEqual(tableProblems(readme), []);
    for (const f of referencedFiles(readme)) assert.ok(existsSync(join(published, f)), f);
    assert.deepEqual(referencedFiles(readme).sort(), ["loss.svg", "val_accuracy.svg"]);
    const [head] = parseTables(readme);
    assert.deepEqual(head.rows.map((r) => r[0]), ["ABINet-Vision", "ConCLR-Vision"]);
    assert.equal(head.rows[1][2], "**0.510 ± 0.002**"); // iiit5k CWR of conclr: 0.5 + (1, 2)/400 + 60/10000
    assert.match(readme, /n = 2 runs per row \(`seed` = 1, 2\)/);
    assert.ok(existsSync(join(published, "strata.lock")));
    const before = await Deno.readTextFile(join(published, "report.json"));
    await Deno.writeTextFile(join(root, "old_report.json"), before);

    // A rerun is cached and publishes the same report.
    const again = await runIn(root, "experiments/rep_e2e.yaml", kinds);
    assert.equal(again.outcomes.find((o) => o.id === "report")?.state, "cached");
    assert.equal(await Deno.readTextFile(join(published, "report.json")), before);

    // More steps: every metric improves a little; diff says so and names the changed param.
    const more = await runIn(root, "experiments/rep_e2e.yaml", kinds, { set: ["params.steps=100"] });
    assert.ok(more.ok, more.lines.join("\n"));
    const out: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => out.push(a.join(" "));
    let code: number;
    const cwd = Deno.cwd();
    try {
      Deno.chdir(root);
      code = await diffMain(["old_report.json", "experiments/rep_e2e.yaml", "--fail-if-worse", "*.cwr=0"]);
    } finally {
      Deno.chdir(cwd);
      console.log = log;
    }
    const md = out.join("\n");
    assert.equal(code, 0, md);
    assert.match(md, /\| \*all\* \| `steps` \| `60` \| `100` \|/);
    assert.match(md, /ConCLR-Vision \| IIIT5k +\| CWR .*\+0\.004 \| +↑/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
