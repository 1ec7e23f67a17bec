/**
 * The train kind's `data` param, built from the loader's schema pieces (data/params.ts). A light module (no
 * loader, canvas or lmdb), so that registering the stage kinds stays cheap.
 */
import {
  augmentSchema,
  type AugmentSchemaParams,
  badInputSchema,
  type ImageParams,
  imageSchema,
  type LabelParams,
  labelSchema,
} from "../data/params.ts";
import * as s from "../pipeline/schema.ts";

export const dataSchema = s.object({
  image: imageSchema,
  labels: labelSchema,
  augment: augmentSchema,
  bad_input: badInputSchema,
}, { description: "input images, label protocol, augmentation (the loader's params)" });

export interface DataParams {
  image: ImageParams;
  labels: LabelParams;
  augment: AugmentSchemaParams;
  bad_input: "error" | "skip";
}
