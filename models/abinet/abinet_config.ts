/**
 * Configs of the full ABINet (`abinet` family) and of its language model alone (`pretrain_lm`).
 *
 * Language model (BCN) presets — the width `d_model` and `max_length` come from the vision model in `abinet`
 * (the alignment fuses features of both) and are explicit fields in `pretrain_lm`:
 *
 * | field      | `full` (official `pretrain_language_model`) | `tiny` | `micro` |
 * | ---------- | ------------------------------------------- | ------ | ------- |
 * | num_layers | 4                                           | 2      | 1       |
 * | nhead      | 8                                           | 4      | 2       |
 * | ffn        | 2048                                        | 256    | 128     |
 * | dropout    | 0.1                                         | 0.1    | 0.1     |
 *
 * Parameters (37 classes): BCN full 12,647,461; full ABINet = vision 23,547,461 + BCN 12,647,461 +
 * alignment 543,781 = 36,738,703 (MindOCR lists ≈ 36.9 M).
 */
import { boolean, integer, number, object, type ObjectSchema, string } from "../../pipeline/schema.ts";
import { type AbinetVisionConfig, configSchema as visionSchema, resolveConfig as resolveVision } from "./config.ts";

export type LanguagePreset = "full" | "tiny" | "micro";

export interface LanguageConfig {
  preset: LanguagePreset;
  num_layers: number;
  nhead: number;
  ffn: number;
  dropout: number;
  detach: boolean;
}

const LANGUAGE_PRESETS: Record<LanguagePreset, Omit<LanguageConfig, "preset" | "detach">> = {
  full: { num_layers: 4, nhead: 8, ffn: 2048, dropout: 0.1 },
  tiny: { num_layers: 2, nhead: 4, ffn: 256, dropout: 0.1 },
  micro: { num_layers: 1, nhead: 2, ffn: 128, dropout: 0.1 },
};

const opt = (description: string) => ({ optional: true, description });

const languageFields = {
  preset: string<LanguagePreset>({
    enum: ["full", "tiny", "micro"],
    default: "full",
    description: "defaults for the fields left out: full = official BCN (4 layers, 8 heads, ffn 2048)",
  }),
  num_layers: integer({ min: 1, ...opt("decoder layers (full 4)") }),
  nhead: integer({ min: 1, ...opt("attention heads (full 8)") }),
  ffn: integer({ min: 1, ...opt("feed-forward width (full 2048)") }),
  dropout: number({ min: 0, max: 0.99, ...opt("dropout (full 0.1)") }),
  detach: boolean({ default: true, description: "block gradients from the language model's input (official: true)" }),
};

export const languageSchema = object(languageFields);

export function resolveLanguage(raw: Partial<LanguageConfig>, dModel: number, where: string): LanguageConfig {
  const preset: LanguagePreset = raw.preset ?? "full";
  const base = LANGUAGE_PRESETS[preset];
  if (!base) throw new Error(`${where}: unknown language preset "${preset}"`);
  const c: LanguageConfig = {
    preset,
    num_layers: raw.num_layers ?? base.num_layers,
    nhead: raw.nhead ?? base.nhead,
    ffn: raw.ffn ?? base.ffn,
    dropout: raw.dropout ?? base.dropout,
    detach: raw.detach ?? true,
  };
  if (dModel % c.nhead !== 0) throw new Error(`${where}: d_model ${dModel} is not divisible by nhead ${c.nhead}`);
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// `abinet`

export interface LossWeights {
  vision: number;
  language: number;
  alignment: number;
}

export interface AbinetConfig {
  vision: AbinetVisionConfig;
  language: LanguageConfig;
  iter_size: number;
  loss_weights: LossWeights;
  label_smoothing: number;
}

export const abinetSchema = object({
  vision: visionSchema,
  language: object(languageFields),
  iter_size: integer({ min: 1, default: 3, description: "language → alignment iterations (official 3)" }),
  loss_weights: object({
    vision: number({ min: 0, default: 1, description: "weight of the vision cross-entropy (official 1)" }),
    language: number({ min: 0, default: 1, description: "weight of the language cross-entropy (official 1)" }),
    alignment: number({ min: 0, default: 1, description: "weight of the alignment cross-entropy (official 1)" }),
  }),
  label_smoothing: number({
    min: 0,
    max: 0.99,
    default: 0,
    description: "ABINet's random label smoothing factor (official: off = 0; its smooth_factor is 0.1)",
  }),
});

export function resolveAbinet(raw: Partial<Record<keyof AbinetConfig, unknown>>): AbinetConfig {
  const vision = resolveVision((raw.vision ?? {}) as Partial<AbinetVisionConfig>);
  const w = (raw.loss_weights ?? {}) as Partial<LossWeights>;
  return {
    vision,
    language: resolveLanguage((raw.language ?? {}) as Partial<LanguageConfig>, vision.d_model, "abinet config"),
    iter_size: (raw.iter_size as number | undefined) ?? 3,
    loss_weights: { vision: w.vision ?? 1, language: w.language ?? 1, alignment: w.alignment ?? 1 },
    label_smoothing: (raw.label_smoothing as number | undefined) ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// `pretrain_lm`: the language model alone

export interface LanguageModelConfig extends LanguageConfig {
  d_model: number;
  max_length: number;
  label_smoothing: number;
}

export const languageModelSchema: ObjectSchema<LanguageModelConfig> = object({
  ...languageFields,
  d_model: integer({ min: 1, ...opt("model width; must equal the vision model's d_model (full 512, tiny 128)") }),
  max_length: integer({ min: 1, default: 25, description: "maximum word length; T = max_length + 1" }),
  label_smoothing: number({ min: 0, max: 0.99, default: 0, description: "as `abinet` (official: off)" }),
}) as unknown as ObjectSchema<LanguageModelConfig>;

const PRESET_WIDTH: Record<LanguagePreset, number> = { full: 512, tiny: 128, micro: 64 };

export function resolveLanguageModel(raw: Partial<LanguageModelConfig>): LanguageModelConfig {
  const preset: LanguagePreset = raw.preset ?? "full";
  const dModel = raw.d_model ?? PRESET_WIDTH[preset];
  return {
    ...resolveLanguage(raw, dModel, "abinet language config"),
    d_model: dModel,
    max_length: raw.max_length ?? 25,
    label_smoothing: raw.label_smoothing ?? 0,
  };
}
