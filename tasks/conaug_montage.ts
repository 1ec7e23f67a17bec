/**
 * `conaug_montage` stage kind: a PNG of ConCLR's ConAug views on the first training samples (original, view 1,
 * view 2, each labelled), from the run's own training data and data params, for the report (`figures` input).
 * tfjs, the loader and canvas are imported lazily.
 */
import * as s from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";
import { type DataParams, dataSchema } from "../training/data_params.ts";

export interface MontageParams {
  data: DataParams;
  count: number;
  seed: number;
}

const params = s.object({
  data: dataSchema,
  count: s.integer({ min: 2, max: 32, default: 6, description: "samples shown (rows)" }),
  seed: s.integer({ min: 0, default: 1, description: "seed of the training stream and of the views" }),
}) as unknown as s.ObjectSchema<MontageParams>;

export default registerStageKind<MontageParams>({
  kind: "conaug_montage",
  version: 1,
  description: "PNG of ConCLR's ConAug views (original and two concatenated views, labelled) on training samples",
  params,
  inputs: { train: { description: "training LMDB(s), as given to the train stage", many: true } },
  outputs: { montage: { type: "file", description: "the PNG" } },
  module: import.meta.url,
  environment: async () => ({ tfjs: (await import("@tensorflow/tfjs")).version.tfjs }),
  async run(ctx: StageContext<MontageParams>) {
    const { prepareBackend } = await import("../training/backend.ts");
    await prepareBackend("cpu", (l) => ctx.log(l));
    const { conAugMontage } = await import("../models/conclr/montage.ts");
    const paths = (ctx.inputs.train ?? []).map((i) => i.path);
    const r = await conAugMontage(paths, ctx.params.data, ctx.params.count, ctx.params.seed);
    const out = ctx.output("montage");
    await Deno.writeFile(`${out}.partial`, r.png);
    await Deno.rename(`${out}.partial`, out);
    return { summary: { rows: r.rows } };
  },
});
