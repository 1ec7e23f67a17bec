import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseTables, referencedFiles, tableProblems } from "../report/markdown.ts";
import type { ReportData } from "../report/model.ts";
import { fakeContext, writeFixtures } from "../report/testing.ts";
import kind, { reportParams } from "./report.ts";

async function runReport(dir: string, rawParams: Record<string, unknown>, fixtures = {}) {
  const inputs = await writeFixtures(dir, fixtures);
  const params = reportParams.parse(rawParams, []);
  const ctx = fakeContext(dir, params, { metrics: inputs.metrics, curves: inputs.curves });
  const result = await kind.run(ctx);
  const out = ctx.output("report");
  const readme = await Deno.readTextFile(join(out, "README.md"));
  const data = JSON.parse(await Deno.readTextFile(join(out, "report.json"))) as ReportData;
  return { out, readme, data, result, ctx };
}

Deno.test("report stage: README with headline, details, params, data, curves, provenance", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-report-" });
  try {
    const { out, readme, data, result } = await runReport(dir, {
      title: "ConCLR-Vision vs ABINet-Vision",
      description: "ConCLR-Vision vs ABINet-Vision, small default setting.",
      note: "Numbers from the small default setting, not the paper's.",
      headline: { columns: ["iiit5k", "svt", "synth_test"] },
    }, { bias: { conclr_vision: 0.05 } });

    // Valid GFM: every table's rows have the header's column count; every referenced file exists.
    assert.deepEqual(tableProblems(readme), []);
    const refs = referencedFiles(readme);
    assert.deepEqual(refs.sort(), ["loss.svg", "val_accuracy.svg"]);
    for (const f of refs) assert.ok(existsSync(join(out, f)), `${f} is referenced but missing`);

    // Sections in order.
    const order = [
      "# ConCLR-Vision vs ABINet-Vision",
      "## Results",
      "## Per data set",
      "## Params",
      "## Data",
      "## Training curves",
      "## Provenance",
    ];
    const at = order.map((h) => readme.indexOf(`\n${h}`) >= 0 ? readme.indexOf(`\n${h}`) : readme.indexOf(h));
    assert.ok(at.every((x) => x >= 0), `missing a section: ${order.filter((_, i) => at[i] < 0)}`);
    assert.deepEqual([...at].sort((a, b) => a - b), at);
    assert.match(readme, /small default setting, not the paper's/);

    // Headline: model rows × data set columns (CCR and CWR), mean ± std, best in bold, n stated.
    const [head] = parseTables(readme);
    assert.deepEqual(head.header, [
      "Model",
      "IIIT5k CCR",
      "IIIT5k CWR",
      "SVT CCR",
      "SVT CWR",
      "Synth test CCR",
      "Synth test CWR",
    ]);
    assert.deepEqual(head.rows.map((r) => r[0]), ["ABINet-Vision", "ConCLR-Vision"]);
    for (const r of head.rows) for (const c of r.slice(1)) assert.match(c, /^(\*\*)?0\.\d{3} ± 0\.\d{3}(\*\*)?$/);
    assert.ok(head.rows[1].slice(1).every((c) => c.startsWith("**")), "ConCLR (biased up) should be bold everywhere");
    assert.ok(head.rows[0].slice(1).every((c) => !c.startsWith("**")));
    assert.match(readme, /n = 3 runs per row \(`seed` = 1, 2, 3\)/);
    const conclr = data.groups.find((g) => g.id === "model=conclr_vision")!;
    assert.equal(conclr.n, 3);
    assert.deepEqual(conclr.seeds, [1, 2, 3]);
    const iiit = conclr.metrics.iiit5k.cwr;
    assert.equal(iiit.values.length, 3);
    assert.ok(Math.abs(iiit.mean! - iiit.values.reduce((a, b) => a + b) / 3) < 1e-12);

    // Detail tables for each data set and the combined one.
    for (
      const h of ["### IIIT5k (3000 samples)", "### SVT (647 samples)", "### Synth test (500 samples)", "### Combined"]
    ) {
      assert.ok(readme.includes(h), h);
    }
    // Params: only the differing ones (model), seed varies within groups alike → hidden; evaluate params shared.
    // ConCLR's extra config fields are absent (—) for ABINet.
    assert.deepEqual(data.differing_params, ["model", "model_config.alpha", "model_config.tau"]);
    assert.match(readme, /\| `model_config.tau` +\| — +\| `2` +\|/);
    assert.ok("evaluate.protocol" in data.shared_params);
    assert.ok("optimizer.clip" in data.shared_params);
    // Data summary and provenance.
    assert.deepEqual(data.datasets.map((d) => [d.name, d.count]), [["iiit5k", 3000], ["svt", 647], [
      "synth_test",
      500,
    ]]);
    assert.match(readme, /`evaluate\[model=abinet_vision,seed=1\]`/);
    assert.match(readme, /backend wasm, tfjs 4\.22\.0/);
    assert.match(readme, /\| 123,457 \|/); // parameter count of conclr_vision
    assert.equal(data.format, "strata-report/1");
    assert.deepEqual(data.warnings, []);
    assert.equal((result as { summary: { runs: number } }).summary.runs, 6);
    // Deterministic: a second run writes byte-identical files.
    const again = await runReport(await Deno.makeTempDir({ dir, prefix: "again-" }), {
      title: "ConCLR-Vision vs ABINet-Vision",
      description: "ConCLR-Vision vs ABINet-Vision, small default setting.",
      note: "Numbers from the small default setting, not the paper's.",
      headline: { columns: ["iiit5k", "svt", "synth_test"] },
    }, { bias: { conclr_vision: 0.05 } });
    assert.equal(
      again.readme.replaceAll(/train_[a-z_]+\d\.jsonl/g, ""),
      readme.replaceAll(/train_[a-z_]+\d\.jsonl/g, ""),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report stage: long layout, one seed, no curves, missing fields become warnings", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-report-" });
  try {
    const inputs = await writeFixtures(dir, { seeds: [7], datasets: { iiit5k: 100 }, shape: "map" });
    // Drop a field from one metrics.json, and add a broken one-line curve.
    const f = join(inputs.metrics[0].path, "metrics.json");
    const json = JSON.parse(await Deno.readTextFile(f));
    delete json.datasets.iiit5k.mean_confidence;
    await Deno.writeTextFile(f, JSON.stringify(json));
    const params = reportParams.parse({
      headline: { layout: "long", combined: true },
      display_names: { iiit5k: "IIIT5K" },
    }, []);
    const ctx = fakeContext(dir, params, { metrics: inputs.metrics, curves: [] });
    await kind.run(ctx);
    const readme = await Deno.readTextFile(join(ctx.output("report"), "README.md"));
    assert.deepEqual(tableProblems(readme), []);
    assert.deepEqual(referencedFiles(readme), []);
    assert.match(readme, /No training curves were given/);
    assert.match(readme, /One run per row/);
    const [head] = parseTables(readme);
    assert.deepEqual(head.header, ["Model", "Data set", "CCR", "CWR"]);
    assert.deepEqual(head.rows.map((r) => r.slice(0, 2)), [
      ["**ABINet-Vision**", "IIIT5K"],
      ["", "Combined"],
      ["**ConCLR-Vision**", "IIIT5K"],
      ["", "Combined"],
    ]);
    assert.match(
      readme,
      /## Warnings\n\n- evaluate\\\[model=abinet_vision,seed=7\\\]: metrics.json: datasets.iiit5k: missing mean_confidence\n/,
    );
    assert.ok(ctx.logs.some((l) => l.includes("missing mean_confidence")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report params: unknown keys and metrics are errors", () => {
  assert.throws(() => reportParams.parse({ headline: { metrics: ["accuracy"] } }, []), /headline\.metrics\[0\]/);
  assert.throws(() => reportParams.parse({ seed: "x" }, []), /no such key/);
  const p = reportParams.parse({}, []);
  assert.deepEqual(p.headline.metrics, ["ccr", "cwr"]);
  assert.equal(p.seed_axis, "seed");
});
