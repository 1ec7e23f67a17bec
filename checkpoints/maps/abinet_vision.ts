/**
 * `abinet_vision` ← the official ABINet `BaseVision` (modules/model_vision.py): strata's names are the official
 * ones, so the map only unwraps (`module.`, Lightning `model.`, the `vision.` of a vision-only export of
 * `ABINetIterModel`) and drops `num_batches_tracked`. Layouts (OIHW convs, `[out, in]` linears, the packed
 * `in_proj_weight` `[3E, E]`, BatchNorm statistics) are converted by the model's `loadState`.
 *
 * The config is read off the tensors (stem/stage widths, blocks per stage, transformer layers, feed-forward and
 * attention widths, max length); the head count is not visible in a state dict and stays 8 (official) unless
 * Lightning hyper parameters give `nhead`.
 */
import type { NamedTensor } from "../../models/safetensors.ts";
import { type KeyMapContext, registerKeyMap } from "../key_maps.ts";

/** Distinct values of the numeric component after `prefix` in the tensor names. */
function indices(tensors: Map<string, NamedTensor>, prefix: string): number[] {
  const out = new Set<number>();
  for (const name of tensors.keys()) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)\./.exec(name.slice(prefix.length));
    if (m) out.add(Number(m[1]));
  }
  return [...out].sort((a, b) => a - b);
}

/** The `abinet_vision` config fields that the tensors determine. */
export function abinetVisionConfig(ctx: KeyMapContext): Record<string, unknown> {
  const t = ctx.tensors;
  const shape = (name: string) => t.get(name)?.shape;
  const config: Record<string, unknown> = {};
  const conv1 = shape("backbone.resnet.conv1.weight");
  if (conv1) {
    config.stem_channels = conv1[0];
    config.image_channels = conv1[1];
  }
  const channels: number[] = [], blocks: number[] = [];
  for (let k = 1; shape(`backbone.resnet.layer${k}.0.conv1.weight`); k++) {
    channels.push(shape(`backbone.resnet.layer${k}.0.conv1.weight`)![0]);
    blocks.push(indices(t, `backbone.resnet.layer${k}.`).length);
  }
  if (channels.length) {
    config.stage_channels = channels;
    config.stage_blocks = blocks;
    config.d_model = channels[channels.length - 1];
  }
  const layers = indices(t, "backbone.transformer.layers.");
  config.num_layers = layers.length;
  const ffn = shape("backbone.transformer.layers.0.linear1.weight");
  if (ffn) config.ffn = ffn[0];
  const att = shape("attention.k_encoder.0.0.weight");
  if (att) config.attention_channels = att[0];
  const pe = shape("attention.pos_encoder.pe");
  if (pe) config.max_length = pe[0] - 1;
  const hp = ctx.hyperParameters;
  if (hp && typeof hp.nhead === "number") config.nhead = hp.nhead;
  return config;
}

registerKeyMap({
  family: "abinet_vision",
  source: "ABINet modules/model_vision.py BaseVision (github.com/FangShancheng/ABINet)",
  wrappers: ["vision."],
  config: abinetVisionConfig,
  // ABINet's dataset.py: 32×128 RGB, ImageNet mean/std, charset_36, max length 25.
  data: { height: 32, width: 128, channels: 3, normalize: "imagenet", protocol: 36, max_length: 25 },
});
