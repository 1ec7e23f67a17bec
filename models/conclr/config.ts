/**
 * Config of the `conclr_vision` family: the `abinet_vision` fields plus the
 * ConCLR ones. A light module (no tfjs), so that stage params can be
 * validated while planning.
 */
import * as s from "../../pipeline/schema.ts";
import { type AbinetVisionConfig, configSchema as visionSchema, resolveConfig } from "../abinet/config.ts";
import type { ProjectionKind } from "./projection_head.ts";

export const FAMILY = "conclr_vision";

/** The ConCLR fields added to the `abinet_vision` config. */
export interface ConclrFields {
  projection: ProjectionKind;
  projection_dim: number;
  temperature: number;
  alpha: number;
  view_weights: number[];
}

export type ConclrVisionConfig = AbinetVisionConfig & ConclrFields;

export const CONCLR_DEFAULTS: ConclrFields = {
  projection: "mlp",
  projection_dim: 128,
  temperature: 2,
  alpha: 0.2,
  view_weights: [1.0, 0.5, 0.5],
};

const conclrFields = {
  projection: s.string<ProjectionKind>({
    enum: ["mlp", "linear"],
    default: CONCLR_DEFAULTS.projection,
    description: "projection head: mlp = Linear(d,d) → ReLU → Linear(d, projection_dim); linear = Linear(d, dim)",
  }),
  projection_dim: s.integer({
    min: 1,
    default: CONCLR_DEFAULTS.projection_dim,
    description: "embedding size of the projection head (128)",
  }),
  temperature: s.number({
    min: 1e-6,
    default: CONCLR_DEFAULTS.temperature,
    description: "contrastive temperature τ (ConCLR: 2)",
  }),
  alpha: s.number({ min: 0, default: CONCLR_DEFAULTS.alpha, description: "weight α of the contrastive loss (0.2)" }),
  view_weights: s.array(s.number({ min: 0 }), {
    minItems: 3,
    maxItems: 3,
    default: CONCLR_DEFAULTS.view_weights,
    description: "cross-entropy weights of the original, aug1 and aug2 views ([1.0, 0.5, 0.5])",
  }),
};

/** The `abinet_vision` schema plus the ConCLR fields. */
export const configSchema = s.object({ ...visionSchema.fields, ...conclrFields }) as unknown as s.ObjectSchema<
  Partial<AbinetVisionConfig> & Partial<ConclrFields>
>;

/** Fills the vision fields from the preset and the ConCLR fields from their defaults. */
export function resolveConclrConfig(raw: Partial<AbinetVisionConfig> & Partial<ConclrFields>): ConclrVisionConfig {
  const visionRaw: Record<string, unknown> = { ...raw };
  for (const k of Object.keys(CONCLR_DEFAULTS)) delete visionRaw[k];
  const vision = resolveConfig(visionRaw as Partial<AbinetVisionConfig>);
  const c: ConclrVisionConfig = {
    ...vision,
    projection: raw.projection ?? CONCLR_DEFAULTS.projection,
    projection_dim: raw.projection_dim ?? CONCLR_DEFAULTS.projection_dim,
    temperature: raw.temperature ?? CONCLR_DEFAULTS.temperature,
    alpha: raw.alpha ?? CONCLR_DEFAULTS.alpha,
    view_weights: [...(raw.view_weights ?? CONCLR_DEFAULTS.view_weights)],
  };
  if (c.view_weights.length !== 3) {
    throw new Error(`${FAMILY} config: view_weights needs 3 values (original, aug1, aug2), got [${c.view_weights}]`);
  }
  if (!(c.temperature > 0)) throw new Error(`${FAMILY} config: temperature must be > 0, got ${c.temperature}`);
  return c;
}
