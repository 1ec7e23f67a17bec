/**
 * Params schema pieces for the data side, so that stage kinds (`train`,
 * `evaluate`, `import`, `stats`…) can embed them:
 *
 * ```ts
 * import { augmentSchema, imageSchema, labelSchema } from "../data/params.ts";
 * params: object({ image: imageSchema, labels: labelSchema, augment: augmentSchema, ... })
 * ```
 *
 * Light module: no canvas, no lmdb.
 */
import {
  array,
  boolean,
  integer,
  type KeyPath,
  number,
  object,
  type Schema,
  SchemaError,
  string,
} from "../pipeline/schema.ts";
import type { AugmentParams } from "./augment.ts";
import { MAX_LENGTH, type Protocol, PROTOCOLS } from "./charset.ts";
import type { ImageSpec } from "./image.ts";

/** A label protocol: 36, 62 or 94. */
export function protocolSchema(opts: { default?: Protocol; description?: string } = {}): Schema<Protocol> {
  const expected = `one of ${PROTOCOLS.join(", ")}`;
  const check = (v: unknown, path: KeyPath): Protocol => {
    if (typeof v !== "number" || !PROTOCOLS.includes(v as Protocol)) throw new SchemaError(path, expected, v);
    return v as Protocol;
  };
  return {
    expected,
    description: opts.description,
    optional: opts.default !== undefined,
    defaultValue: opts.default,
    parse(v, path) {
      if (v === undefined) {
        if (opts.default !== undefined) return opts.default;
        throw new SchemaError(path, `${expected} (required)`, v);
      }
      return check(v, path);
    },
    fromString: (s, path) => check(Number(s.trim()), path),
    describe: () => ({
      type: expected,
      ...(opts.description ? { description: opts.description } : {}),
      ...(opts.default !== undefined ? { default: opts.default } : {}),
    }),
  };
}

export const imageSchema = object({
  height: integer({ min: 4, max: 1024, default: 32, description: "model input height (images are stretched)" }),
  width: integer({ min: 4, max: 4096, default: 128, description: "model input width" }),
  channels: integer({ min: 1, max: 3, default: 3, description: "3 = RGB, 1 = luminance (2 is not allowed)" }),
  normalize: string<"imagenet" | "unit" | "symmetric">({
    enum: ["imagenet", "unit", "symmetric"],
    default: "imagenet",
    description: "imagenet: (x/255 − ImageNet mean)/std; unit: x/255; symmetric: x/127.5 − 1 (PARSeq)",
  }),
}, { description: "image size, channels and normalisation" });

export const labelSchema = object({
  protocol: protocolSchema({
    default: 36,
    description: "36: lowercase alphanumerics; 62: case-sensitive alphanumerics; 94: printable ASCII",
  }),
  max_length: integer({ min: 1, max: 100, default: MAX_LENGTH, description: "longer labels are dropped" }),
  unsupported: string<"remove" | "drop">({
    enum: ["remove", "drop"],
    default: "remove",
    description: "characters outside the protocol: remove them (ABINet) or drop the sample",
  }),
}, { description: "label protocol" });

const p = (def: number, description: string) => number({ min: 0, max: 1, default: def, description });
const nonNeg = (def: number, description: string) => number({ min: 0, default: def, description });

export const augmentSchema = object({
  enabled: boolean({ default: true, description: "train-time augmentation on or off" }),
  geometry: object({
    p: p(0.5, "probability of a geometric transform"),
    degrees: number({ min: 0, max: 180, default: 45, description: "max rotation (degrees)" }),
    scale: array(number({ min: 0.01 }), {
      minItems: 2,
      maxItems: 2,
      default: [0.5, 2],
      description: "affine scale range",
    }),
    shear_x: number({ min: 0, max: 80, default: 45, description: "max shear along x (degrees)" }),
    shear_y: number({ min: 0, max: 80, default: 15, description: "max shear along y (degrees)" }),
    translate: nonNeg(0, "max translation as a fraction of the height"),
    distortion: p(0.5, "perspective distortion"),
    types: array(number({ min: 0 }), {
      minItems: 3,
      maxItems: 3,
      default: [1, 1, 1],
      description: "relative weights of rotation, affine, perspective",
    }),
  }),
  deterioration: object({
    p: p(0.25, "probability of deterioration"),
    noise_var: nonNeg(20, "max Gaussian noise variance (0..255 scale)"),
    blur: nonNeg(6, "max motion blur kernel size (pixels)"),
    rescale_factor: nonNeg(4, "max pyramid levels of down-up rescaling below the 4× base"),
  }),
  color_jitter: object({
    p: p(0.25, "probability of colour jitter"),
    brightness: nonNeg(0.5, "brightness factor range ±"),
    contrast: nonNeg(0.5, "contrast factor range ±"),
    saturation: nonNeg(0.5, "saturation factor range ±"),
    hue: number({ min: 0, max: 0.5, default: 0.1, description: "hue shift range ± (fraction of a turn)" }),
  }),
}, { description: "ABINet train-time augmentation" });

export const badInputSchema = string<"error" | "skip">({
  enum: ["error", "skip"],
  default: "error",
  description: "bad samples (missing/empty/undecodable image, empty or non-UTF-8 label): fail, or skip and count",
});

export type ImageParams = {
  height: number;
  width: number;
  channels: number;
  normalize: "imagenet" | "unit" | "symmetric";
};
export type LabelParams = { protocol: Protocol; max_length: number; unsupported: "remove" | "drop" };
export type AugmentSchemaParams = AugmentParams & { enabled: boolean };

/** The loader's image spec from parsed `image` params. */
export function imageSpecOf(p: ImageParams): ImageSpec {
  if (p.channels !== 1 && p.channels !== 3) throw new Error(`image.channels must be 1 or 3, got ${p.channels}`);
  return { height: p.height, width: p.width, channels: p.channels, normalize: p.normalize };
}

/** The loader's augmentation params from parsed `augment` params (undefined when disabled). */
export function augmentOf(p: AugmentSchemaParams): AugmentParams | undefined {
  if (!p.enabled) return undefined;
  return { geometry: p.geometry, deterioration: p.deterioration, color_jitter: p.color_jitter };
}
