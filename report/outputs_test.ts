import assert from "node:assert/strict";
import { join } from "node:path";
import type { ResolvedInput } from "../pipeline/stage_kind.ts";
import { parseTables } from "./markdown.ts";
import { buildReport, metricInfo, parseMetrics } from "./model.ts";
import { renderReadme } from "./readme.ts";

const rates = (cwr: number, samples: number) => ({
  samples,
  word_accuracy: cwr,
  cwr,
  ccr: cwr + 0.1,
  one_minus_ned: cwr + 0.05,
  mean_confidence: 0.5,
  mean_label_length: 5,
});

Deno.test("report: per-output metrics of a multi-output model (metric@output) and the Average column", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const metrics: ResolvedInput[] = [];
    const write = async (model: string, sets: Record<string, [number, Record<string, number>?]>) => {
      const datasets = Object.entries(sets).map(([name, [cwr, outputs]]) => ({
        name,
        stage: name,
        ...rates(cwr, 100),
        ...(outputs
          ? { outputs: Object.fromEntries(Object.entries(outputs).map(([o, v]) => [o, rates(v, 100)])) }
          : {}),
      }));
      const path = join(dir, `${model}.json`);
      await Deno.writeTextFile(path, JSON.stringify({ model: { family: model, params: { model } }, datasets }));
      metrics.push({
        path,
        stageId: `evaluate[model=${model}]`,
        output: "metrics",
        matrix: { model },
        kind: "evaluate",
        params: {},
        digest: model,
      });
    };
    await write("abinet_vision", { iiit5k: [0.5], svt: [0.3] });
    await write("abinet", {
      iiit5k: [0.7, { vision: 0.5, language_1: 0.2, alignment_1: 0.65, alignment_2: 0.7 }],
      svt: [0.5, { vision: 0.3, language_1: 0.1, alignment_1: 0.45, alignment_2: 0.5 }],
    });
    const parsed = parseMetrics(JSON.parse(await Deno.readTextFile(join(dir, "abinet.json"))), "abinet.json");
    assert.equal(parsed.datasets.iiit5k["cwr@alignment_1"], 0.65);
    assert.equal(parsed.datasets.svt["ccr@vision"], 0.4);
    assert.equal(metricInfo("cwr@alignment_2")!.label, "CWR it. 2");
    assert.equal(metricInfo("cwr@language_1")!.label, "CWR LM 1");
    const { data } = await buildReport(metrics, [], {
      experiment: "x",
      stageId: "report",
      seedAxis: "seed",
      rows: "model",
      columns: ["iiit5k", "svt"],
      metrics: ["cwr", "cwr@vision", "cwr@alignment_1"],
      average: true,
    });
    const md = renderReadme(data, { digits: 3, percent: false, charts: [] });
    const headline = parseTables(md)[0];
    assert.deepEqual(headline.header, [
      "Model",
      "IIIT5k CWR",
      "IIIT5k CWR vision",
      "IIIT5k CWR it. 1",
      "SVT CWR",
      "SVT CWR vision",
      "SVT CWR it. 1",
      "Average CWR",
      "Average CWR vision",
      "Average CWR it. 1",
    ]);
    const row = (label: string) => headline.rows.find((r) => r[0].replace(/\*/g, "") === label)!;
    assert.deepEqual(row("ABINet-Vision").slice(1), ["0.500", "—", "—", "0.300", "—", "—", "0.400", "—", "—"]);
    // Unweighted mean over the data sets: (0.7 + 0.5) / 2, (0.65 + 0.45) / 2.
    assert.deepEqual(row("ABINet").slice(7).map((c) => c.replace(/\*/g, "")), ["0.600", "0.400", "0.550"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
