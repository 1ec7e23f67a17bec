/**
 * `deno task bench cost`: strhub's `bench.py` for every family — parameters, FLOPs per module (model / encoder /
 * decoder / head; multiply-accumulates of the kernels actually run, as fvcore counts them; training/cost.ts)
 * and latency per image at batch 1 on the selected backend (STRATA_BACKEND forces one), next to strhub's
 * published PARSeq-S figures (23.8 M parameters, 3.26 GFLOPs, 14.87 ms on a GPU).
 *
 * PARSeq's AR loop stops once every row has emitted an EOS, so an untrained model's FLOPs depend on its
 * random weights; the table gives the worst case (all 26 steps, strhub's `max_length` given) and NAR decoding.
 * STRATA_BENCH_COST_MODELS (e.g. `parseq:micro,abinet_vision:micro`) picks the rows; 95 classes (protocol 94).
 */
import * as tf from "@tensorflow/tfjs";
import "../models/mod.ts";
import { getModelFamily, type Recognizer } from "../models/recognizer.ts";
import { prepareBackend } from "../training/backend.ts";
import { measureCost, type ModelCost, si } from "../training/cost.ts";

const DEFAULT_ROWS = "parseq:micro,parseq:tiny,parseq:small,abinet_vision:micro,abinet_vision:full";
const CLASSES = 95;

interface Variant {
  label: string;
  run: (model: Recognizer) => Promise<ModelCost>;
}

function variants(family: string): Variant[] {
  const shape: [number, number, number] = [32, 128, 3];
  if (family !== "parseq") return [{ label: "—", run: (m) => measureCost(m, shape, { repeats: 3 }) }];
  // deno-lint-ignore no-explicit-any
  const net = (m: Recognizer) => (m as any).net;
  return [
    {
      label: "AR (26 steps) + 1 refinement",
      run: (m) =>
        measureCost(m, shape, {
          repeats: 3,
          forward: (x) => net(m).infer(x, { decodeAr: true, refineIters: 1, maxLength: 25 }),
        }),
    },
    {
      label: "NAR + 2 refinements",
      run: (m) => measureCost(m, shape, { repeats: 3, decoding: { decodeAr: false, refineIters: 2 } }),
    },
  ];
}

export async function main(): Promise<void> {
  const backend = await prepareBackend(Deno.env.get("STRATA_BACKEND") || undefined);
  console.log(`backend ${backend.name}, tfjs ${backend.tfjsVersion}; 32×128 input, batch 1, ${CLASSES} classes\n`);
  const head = ["model", "decoding", "#params", "FLOPs model", "encoder", "decoder", "head", "ms/img @1"];
  const rows: string[][] = [];
  for (const spec of (Deno.env.get("STRATA_BENCH_COST_MODELS") || DEFAULT_ROWS).split(",")) {
    const [name, preset] = spec.split(":");
    const family = getModelFamily(name);
    const model = family.create(family.config.parse(preset ? { preset } : {}, []), 1, CLASSES);
    try {
      for (const v of variants(name)) {
        try {
          const c = await v.run(model);
          const f = (k: string) => {
            const m = c.modules.find((x) => x.module === k);
            return m ? si(m.flops) : "—";
          };
          rows.push([
            `${name} ${preset ?? ""}`,
            v.label,
            si(c.modules[0].parameters),
            f("model"),
            f("encoder"),
            f("decoder"),
            f("head"),
            (c.secondsPerImage * 1000).toFixed(1),
          ]);
        } catch (e) {
          console.log(`${spec} ${v.label} failed: ${(e as Error).message}`);
        }
      }
    } finally {
      model.dispose();
    }
    console.log(`${spec} done (${tf.memory().numTensors} tensors live)`);
  }
  rows.push(["strhub PARSeq-S (published)", "AR + 1 refinement", "23.8 M", "3.26 G", "", "", "", "14.87 (GPU)"]);
  console.log(`\n| ${head.join(" | ")} |\n|${head.map(() => " --- ").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}

if (import.meta.main) await main();
