/**
 * Config of the `abinet_vision` family. Every width, depth and size is a param; `preset` picks the
 * defaults of the fields left out:
 *
 * | field              | `full` (official `pretrain_vision_model`) | `tiny`                 | `micro`             |
 * | ------------------ | ----------------------------------------- | ---------------------- | ------------------- |
 * | image_height/width | 32 / 128                                  | 32 / 128               | 32 / 128            |
 * | image_channels     | 3                                         | 3                      | 3                   |
 * | stem_channels      | 32                                        | 16                     | 8                   |
 * | stage_channels     | [32, 64, 128, 256, 512]                   | [16, 32, 64, 128, 128] | [8, 16, 32, 64, 64] |
 * | stage_blocks       | [3, 4, 6, 6, 3]                           | [1, 1, 1, 1, 1]        | [1, 1, 1, 1, 1]     |
 * | stage_strides      | [2, 1, 2, 1, 1]                           | same                   | same                |
 * | d_model            | 512 (= last stage width)                  | 128                    | 64                  |
 * | nhead / ffn        | 8 / 2048                                  | 4 / 256                | 2 / 128             |
 * | num_layers         | 3                                         | 2                      | 2                   |
 * | dropout            | 0.1                                       | 0.1                    | 0.1                 |
 * | attention_channels | 64                                        | 32                     | 16                  |
 * | attention_strides  | [[1,2],[2,2],[2,2],[2,2]]                 | same                   | same                |
 * | max_length         | 25 (T = 26 positions)                     | 25                     | 25                  |
 *
 * Parameters: full 23,547,461 (the official model's count), tiny ≈ 0.80 M, micro ≈ 0.2 M.
 */
import { array, integer, number, object, string } from "../../pipeline/schema.ts";

export type Preset = "full" | "tiny" | "micro";

export interface AbinetVisionConfig {
  preset: Preset;
  image_height: number;
  image_width: number;
  image_channels: number;
  stem_channels: number;
  stage_channels: number[];
  stage_blocks: number[];
  stage_strides: number[];
  d_model: number;
  nhead: number;
  ffn: number;
  num_layers: number;
  dropout: number;
  attention_channels: number;
  attention_strides: number[][];
  max_length: number;
}

const FULL: Omit<AbinetVisionConfig, "preset"> = {
  image_height: 32,
  image_width: 128,
  image_channels: 3,
  stem_channels: 32,
  stage_channels: [32, 64, 128, 256, 512],
  stage_blocks: [3, 4, 6, 6, 3],
  stage_strides: [2, 1, 2, 1, 1],
  d_model: 512,
  nhead: 8,
  ffn: 2048,
  num_layers: 3,
  dropout: 0.1,
  attention_channels: 64,
  attention_strides: [[1, 2], [2, 2], [2, 2], [2, 2]],
  max_length: 25,
};

export const PRESETS: Record<Preset, Omit<AbinetVisionConfig, "preset">> = {
  full: FULL,
  tiny: {
    ...FULL,
    stem_channels: 16,
    stage_channels: [16, 32, 64, 128, 128],
    stage_blocks: [1, 1, 1, 1, 1],
    d_model: 128,
    nhead: 4,
    ffn: 256,
    num_layers: 2,
    attention_channels: 32,
  },
  micro: {
    ...FULL,
    stem_channels: 8,
    stage_channels: [8, 16, 32, 64, 64],
    stage_blocks: [1, 1, 1, 1, 1],
    d_model: 64,
    nhead: 2,
    ffn: 128,
    num_layers: 2,
    attention_channels: 16,
  },
};

const opt = (description: string) => ({ optional: true, description });
const int = (min: number, description: string) => integer({ min, ...opt(description) });
const ints = (description: string) => array(integer({ min: 1 }), { minItems: 1, ...opt(description) });

export const configSchema = object({
  preset: string<Preset>({
    enum: ["full", "tiny", "micro"],
    default: "full",
    description: "defaults for the fields left out: full = official ABINet-Vision, tiny / micro = small and fast",
  }),
  image_height: int(1, "input image height (full 32)"),
  image_width: int(1, "input image width (full 128)"),
  image_channels: int(1, "input channels (full 3)"),
  stem_channels: int(1, "ResNet stem conv width (full 32)"),
  stage_channels: ints("ResNet stage widths (full [32,64,128,256,512]); the last must equal d_model"),
  stage_blocks: ints("BasicBlocks per stage (full [3,4,6,6,3])"),
  stage_strides: ints("stride of each stage's first block (full [2,1,2,1,1])"),
  d_model: int(1, "transformer width (full 512; defaults to the last stage width)"),
  nhead: int(1, "attention heads (full 8)"),
  ffn: int(1, "feed-forward width (full 2048)"),
  num_layers: int(0, "transformer encoder layers (full 3)"),
  dropout: number({ min: 0, max: 0.99, ...opt("dropout in the transformer and after the positional encoding (0.1)") }),
  attention_channels: int(1, "PositionAttention key UNet width (full 64)"),
  attention_strides: array(array(integer({ min: 1 }), { minItems: 2, maxItems: 2 }), {
    minItems: 1,
    ...opt("key UNet encoder strides [sh, sw] (full [[1,2],[2,2],[2,2],[2,2]])"),
  }),
  max_length: int(1, "maximum word length; T = max_length + 1 positions (25)"),
});

/** Fills the fields left out from the preset and checks consistency; errors name the field. */
export function resolveConfig(raw: Partial<AbinetVisionConfig>): AbinetVisionConfig {
  const preset: Preset = raw.preset ?? "full";
  const base = PRESETS[preset];
  if (!base) throw new Error(`abinet_vision config: unknown preset "${preset}"`);
  const pick = <K extends keyof typeof base>(k: K) => structuredClone(raw[k] ?? base[k]) as AbinetVisionConfig[K];
  const stage_channels = pick("stage_channels");
  const c: AbinetVisionConfig = {
    preset,
    image_height: pick("image_height"),
    image_width: pick("image_width"),
    image_channels: pick("image_channels"),
    stem_channels: pick("stem_channels"),
    stage_channels,
    stage_blocks: pick("stage_blocks"),
    stage_strides: pick("stage_strides"),
    // An explicit stage_channels without d_model implies d_model = its last width.
    d_model: raw.d_model ?? (raw.stage_channels ? stage_channels[stage_channels.length - 1] : base.d_model),
    nhead: pick("nhead"),
    ffn: pick("ffn"),
    num_layers: pick("num_layers"),
    dropout: pick("dropout"),
    attention_channels: pick("attention_channels"),
    attention_strides: pick("attention_strides"),
    max_length: pick("max_length"),
  };
  const n = c.stage_channels.length;
  if (c.stage_blocks.length !== n || c.stage_strides.length !== n) {
    throw new Error(
      `abinet_vision config: stage_channels, stage_blocks and stage_strides need the same length (${n}, ${c.stage_blocks.length}, ${c.stage_strides.length})`,
    );
  }
  if (c.stage_channels[n - 1] !== c.d_model) {
    throw new Error(
      `abinet_vision config: d_model ${c.d_model} must equal the last stage width ${c.stage_channels[n - 1]}`,
    );
  }
  if (c.d_model % c.nhead !== 0) {
    throw new Error(`abinet_vision config: d_model ${c.d_model} is not divisible by nhead ${c.nhead}`);
  }
  const r = c.stage_strides.reduce((a, b) => a * b, 1);
  if (c.image_height % r !== 0 || c.image_width % r !== 0) {
    throw new Error(
      `abinet_vision config: image ${c.image_height}×${c.image_width} is not divisible by the ResNet stride ${r}`,
    );
  }
  return c;
}

/** Feature-map size after the ResNet. */
export function featureSize(c: AbinetVisionConfig): [number, number] {
  const r = c.stage_strides.reduce((a, b) => a * b, 1);
  return [c.image_height / r, c.image_width / r];
}
