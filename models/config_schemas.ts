/**
 * Config schemas of the built-in model families, importable without tfjs, so
 * that the train stage validates `architecture` while the engine plans (with
 * the experiment file's line numbers) rather than when training starts.
 */
import type { ObjectSchema } from "../pipeline/schema.ts";
import { abinetSchema as abinet } from "./abinet/abinet_config.ts";
import { configSchema as abinetVision } from "./abinet/config.ts";
import { configSchema as conclrVision } from "./conclr/config.ts";

const schemas: Record<string, ObjectSchema<unknown>> = {
  abinet: abinet as ObjectSchema<unknown>,
  abinet_vision: abinetVision as ObjectSchema<unknown>,
  conclr_vision: conclrVision as ObjectSchema<unknown>,
};

/** The family's config schema, or undefined for a family that is not built in. */
export function builtinConfigSchema(family: string): ObjectSchema<unknown> | undefined {
  return Object.hasOwn(schemas, family) ? schemas[family] : undefined;
}

export function builtinFamilies(): string[] {
  return Object.keys(schemas).sort();
}
