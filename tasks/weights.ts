/**
 * `weights` stage kind: imports published PyTorch weights (`.pth` / `.pt` zip or legacy, Lightning `.ckpt`,
 * safetensors) as a strata checkpoint. Input `file` is the checkpoint (`path:…`) or a folder holding it (a
 * verified `download`'s `data` output; `member` names the file when the folder holds several). The `model` output
 * has the layout of a train stage's (`best.safetensors`, `last.safetensors`, `config.json`), so `evaluate`, `read`
 * and `train` (`init_from`) take it like a trained model. Names and layouts are mapped by the family's key map
 * (`checkpoints/maps/`); a file that does not fit fails with every missing, unexpected and mis-shaped key.
 */
import { join } from "node:path";
import { keyMapFamilies } from "../checkpoints/key_maps.ts";
import "../checkpoints/maps/mod.ts";
import { builtinConfigSchema } from "../models/config_schemas.ts";
import { type KeyPath, SchemaError } from "../pipeline/schema.ts";
import * as s from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";

const dataOverrides = s.object({
  height: s.integer({ min: 1, optional: true, description: "input height (the family's official value)" }),
  width: s.integer({ min: 1, optional: true, description: "input width" }),
  channels: s.integer({ min: 1, max: 3, optional: true, description: "input channels" }),
  normalize: s.string<"imagenet" | "unit">({ enum: ["imagenet", "unit"], optional: true, description: "pixels" }),
  protocol: s.integer({ optional: true, description: "charset protocol of the classifier (36, 62 or 94)" }),
  max_length: s.integer({ min: 1, optional: true, description: "maximum label length" }),
}, { description: "preprocessing overrides (default: what the official model was trained with)" });

export interface WeightsParams {
  family: string;
  architecture: Record<string, unknown>;
  data: {
    height?: number;
    width?: number;
    channels?: number;
    normalize?: "imagenet" | "unit";
    protocol?: number;
    max_length?: number;
  };
  member?: string;
  select?: string;
}

const base = s.object({
  family: s.string({ minLength: 1, description: "strata model family the weights are for (e.g. abinet_vision)" }),
  architecture: s.any({
    default: {},
    description: "config fields overriding what the tensors imply (e.g. nhead, which a state dict cannot show)",
  }),
  data: dataOverrides,
  member: s.string({ optional: true, description: "file name inside a folder input (default: its only file)" }),
  select: s.string({
    optional: true,
    description: 'use only the keys under this prefix, e.g. "vision." for the vision model of a full ABINet file',
  }),
}) as unknown as s.ObjectSchema<WeightsParams>;

/** Plan-time checks: a family with a key map, a known protocol, an architecture the family's schema accepts. */
export const weightsParams: s.ObjectSchema<WeightsParams> = {
  ...base,
  parse(v: unknown, path: KeyPath): WeightsParams {
    const p = base.parse(v, path);
    if (!keyMapFamilies().includes(p.family)) {
      throw new SchemaError(
        [...path, "family"],
        `a family with a PyTorch key map (${keyMapFamilies().join(", ")})`,
        p.family,
      );
    }
    if (p.data.protocol !== undefined && ![36, 62, 94].includes(p.data.protocol)) {
      throw new SchemaError([...path, "data", "protocol"], "one of 36, 62, 94", p.data.protocol);
    }
    builtinConfigSchema(p.family)?.parse(p.architecture ?? {}, [...path, "architecture"]);
    return p;
  },
};

/** The checkpoint file of the `file` input: the file itself, or the one (or `member`) file in a folder. */
export async function checkpointFile(path: string, member: string | undefined, stage: string): Promise<string> {
  const st = await Deno.stat(path);
  if (st.isFile) {
    if (member) throw new Error(`${stage}: member "${member}" given, but input ${path} is a file`);
    return path;
  }
  if (member) return join(path, member);
  const files: string[] = [];
  for await (const e of Deno.readDir(path)) if (e.isFile) files.push(e.name);
  if (files.length !== 1) {
    throw new Error(`${stage}: ${path} holds ${files.length} files (${files.sort().join(", ")}); set params.member`);
  }
  return join(path, files[0]);
}

export default registerStageKind<WeightsParams>({
  kind: "weights",
  version: 1,
  description: "import published PyTorch weights (.pth/.ckpt/safetensors) as a strata checkpoint",
  params: weightsParams,
  inputs: {
    file: { description: "the checkpoint file, or a folder holding it (e.g. a download's data)" },
  },
  outputs: {
    model: { type: "dir", description: "best.safetensors (= last.safetensors) and config.json, as train's model" },
  },
  module: import.meta.url,
  async run(ctx: StageContext<WeightsParams>) {
    const p = ctx.params;
    const source = await checkpointFile(ctx.input("file"), p.member, ctx.stageId);
    const tf = await import("@tensorflow/tfjs");
    // Conversion only transposes and copies: the exact cpu backend is enough and needs no selection.
    await tf.setBackend("cpu");
    const { importOfficial } = await import("../checkpoints/mod.ts");
    const out = ctx.output("model");
    await Deno.mkdir(out, { recursive: true });
    const best = join(out, "best.safetensors");
    const data = Object.fromEntries(Object.entries(p.data).filter(([, v]) => v !== undefined));
    const meta = await importOfficial(source, p.family, best, {
      config: p.architecture,
      data: data as Record<string, never>,
      select: p.select,
    });
    await Deno.copyFile(best, join(out, "last.safetensors"));
    const config = { ...meta, best: { step: 0, val: null }, last: { step: 0, val: null, loss: null } };
    await Deno.writeTextFile(join(out, "config.json"), JSON.stringify(config, null, 2) + "\n");
    const t = meta.training;
    ctx.log(`imported ${source} (${t.file_format}${t.container ? `, "${t.container}"` : ""}) as ${p.family}`);
    return {
      summary: {
        family: p.family,
        file_format: t.file_format,
        container: t.container,
        stripped_prefix: t.stripped_prefix,
        source_dtypes: t.source_dtypes,
        ignored_keys: t.ignored_keys,
        selected: t.selected,
      },
      notes: [
        ...(t.stripped_prefix ? [`wrapper prefix "${t.stripped_prefix}" removed from every key`] : []),
        ...(p.select ? [`only the keys under "${p.select}" were used (${JSON.stringify(t.selected)})`] : []),
      ],
    };
  },
});
