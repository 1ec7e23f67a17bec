/**
 * Config of the `parseq` family (PARSeq, Bautista & Atienza, ECCV 2022). Every width, depth and size is a
 * param; `preset` picks the defaults of the fields left out:
 *
 * | field                         | `small` (strhub `parseq`, P-S) | `tiny` (strhub `parseq-tiny`) | `micro` (CPU; the fixture's) |
 * | ----------------------------- | ------------------------------ | ----------------------------- | ---------------------------- |
 * | image_height/width            | 32 / 128                       | 32 / 128                      | 32 / 128                     |
 * | patch_height/width            | 4 / 8                          | 4 / 8                         | 4 / 8                        |
 * | embed_dim                     | 384                            | 192                           | 64                           |
 * | enc_depth / heads / mlp_ratio | 12 / 6 / 4                     | 12 / 3 / 4                    | 2 / 2 / 4                    |
 * | dec_depth / heads / mlp_ratio | 1 / 12 / 4                     | 1 / 6 / 4                     | 1 / 2 / 4                    |
 * | dropout                       | 0.1                            | 0.1                           | 0.1                          |
 * | perm_num / forward / mirrored | 6 / true / true                | same                          | same                         |
 * | decode_ar / refine_iters      | true / 1                       | same                          | same                         |
 * | max_length                    | 25                             | 25                            | 25                           |
 *
 * Parameters with the 94-character protocol (95 classes): small 23,832,671 (strhub's "23.8 M"), tiny
 * ≈ 6.0 M; micro with 37 classes is the fixture's 188,069.
 */
import { boolean, integer, number, object, string } from "../../pipeline/schema.ts";

export type Preset = "small" | "tiny" | "micro";

export interface ParseqConfig {
  preset: Preset;
  image_height: number;
  image_width: number;
  image_channels: number;
  patch_height: number;
  patch_width: number;
  embed_dim: number;
  enc_depth: number;
  enc_num_heads: number;
  enc_mlp_ratio: number;
  dec_depth: number;
  dec_num_heads: number;
  dec_mlp_ratio: number;
  dropout: number;
  perm_num: number;
  perm_forward: boolean;
  perm_mirrored: boolean;
  decode_ar: boolean;
  refine_iters: number;
  max_length: number;
}

const SMALL: Omit<ParseqConfig, "preset"> = {
  image_height: 32,
  image_width: 128,
  image_channels: 3,
  patch_height: 4,
  patch_width: 8,
  embed_dim: 384,
  enc_depth: 12,
  enc_num_heads: 6,
  enc_mlp_ratio: 4,
  dec_depth: 1,
  dec_num_heads: 12,
  dec_mlp_ratio: 4,
  dropout: 0.1,
  perm_num: 6,
  perm_forward: true,
  perm_mirrored: true,
  decode_ar: true,
  refine_iters: 1,
  max_length: 25,
};

export const PRESETS: Record<Preset, Omit<ParseqConfig, "preset">> = {
  small: SMALL,
  tiny: { ...SMALL, embed_dim: 192, enc_num_heads: 3, dec_num_heads: 6 },
  micro: { ...SMALL, embed_dim: 64, enc_depth: 2, enc_num_heads: 2, dec_num_heads: 2 },
};

const opt = (description: string) => ({ optional: true, description });
const int = (min: number, description: string) => integer({ min, ...opt(description) });

export const configSchema = object({
  preset: string<Preset>({
    enum: ["small", "tiny", "micro"],
    default: "small",
    description: "defaults for the fields left out: small = PARSeq-S (strhub `parseq`), tiny, micro (CPU)",
  }),
  image_height: int(1, "input image height (32)"),
  image_width: int(1, "input image width (128)"),
  image_channels: int(1, "input channels (3)"),
  patch_height: int(1, "ViT patch height (4)"),
  patch_width: int(1, "ViT patch width (8)"),
  embed_dim: int(1, "model width (small 384)"),
  enc_depth: int(1, "ViT encoder blocks (small 12)"),
  enc_num_heads: int(1, "encoder attention heads (small 6)"),
  enc_mlp_ratio: int(1, "encoder MLP width / embed_dim (4)"),
  dec_depth: int(1, "decoder layers (1)"),
  dec_num_heads: int(1, "decoder attention heads (small 12)"),
  dec_mlp_ratio: int(1, "decoder FFN width / embed_dim (4)"),
  dropout: number({ min: 0, max: 0.99, ...opt("decoder dropout (0.1)") }),
  perm_num: int(1, "permutations per batch in PLM training (6)"),
  perm_forward: boolean(opt("always include the left-to-right permutation (true)")),
  perm_mirrored: boolean(opt("each permutation is followed by its reverse (true)")),
  decode_ar: boolean(opt("inference: autoregressive (true) or one non-autoregressive pass (false)")),
  refine_iters: int(0, "inference: cloze refinement iterations (1)"),
  max_length: int(1, "maximum label length; max_length + 1 decoding positions (25)"),
});

/** Fills the fields left out from the preset and checks consistency; errors name the field. */
export function resolveConfig(raw: Partial<ParseqConfig>): ParseqConfig {
  const preset: Preset = raw.preset ?? "small";
  const base = PRESETS[preset];
  if (!base) throw new Error(`parseq config: unknown preset "${preset}"`);
  const c = { preset, ...base } as ParseqConfig;
  for (const [k, v] of Object.entries(raw)) {
    if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  }
  if (c.embed_dim % c.enc_num_heads !== 0) {
    throw new Error(`parseq config: embed_dim ${c.embed_dim} is not divisible by enc_num_heads ${c.enc_num_heads}`);
  }
  if (c.embed_dim % c.dec_num_heads !== 0) {
    throw new Error(`parseq config: embed_dim ${c.embed_dim} is not divisible by dec_num_heads ${c.dec_num_heads}`);
  }
  if (c.image_height % c.patch_height !== 0 || c.image_width % c.patch_width !== 0) {
    throw new Error(
      `parseq config: image ${c.image_height}×${c.image_width} is not divisible by the patch ${c.patch_height}×${c.patch_width}`,
    );
  }
  return c;
}

/** Patch grid `[rows, cols]`. */
export function patchGrid(c: ParseqConfig): [number, number] {
  return [c.image_height / c.patch_height, c.image_width / c.patch_width];
}
