/**
 * `read --attention DIR`: one PNG per image showing where the position attention looked for each decoded
 * character, as the ABINet/ConCLR demos dump it. Row 0 is the input as the model saw it (stretched to its H×W);
 * then one row per decoded position (the characters and the end-of-word), the image with that position's
 * attention map (the feature grid, upsampled) overlaid in red, its character and probability on the left.
 */
import type { DecodedImage } from "../data/image.ts";
import { loadCanvas } from "../data/image.ts";
import { loadFonts } from "../data/fonts.ts";

export interface AttentionRow {
  /** The decoded character, or "</s>" for the end of the word. */
  label: string;
  probability: number;
  /** h·w attention weights (row-major). */
  map: Float32Array;
}

const SCALE = 3;
const LABEL_W = 96;

/** Renders the PNG bytes for one image. `height`×`width` is the model's input size, `h`×`w` its attention grid. */
export async function attentionPng(
  img: DecodedImage,
  rows: readonly AttentionRow[],
  size: { height: number; width: number; h: number; w: number },
  title: string,
): Promise<Uint8Array> {
  const { createCanvas } = await loadCanvas();
  await loadFonts(["dejavu-sans"]);
  const cw = size.width * SCALE, ch = size.height * SCALE, gap = 4;
  const canvas = createCanvas(LABEL_W + cw + 2 * gap, (rows.length + 1) * (ch + gap) + gap);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = `13px "strata-dejavu-sans-400"`;
  ctx.textBaseline = "middle";
  // The attention grid as an RGBA image: red, alpha ∝ weight (scaled to the row's maximum).
  const heat = createCanvas(size.w, size.h);
  const hctx = heat.getContext("2d");
  const draw = (k: number, label: string, map?: Float32Array) => {
    const y = gap + k * (ch + gap);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(img, LABEL_W + gap, y, cw, ch);
    if (map) {
      const data = hctx.createImageData(size.w, size.h);
      let max = 0;
      for (const v of map) max = Math.max(max, v);
      for (let i = 0; i < map.length; i++) {
        data.data[i * 4] = 255;
        data.data[i * 4 + 1] = 0;
        data.data[i * 4 + 2] = 0;
        data.data[i * 4 + 3] = max > 0 ? Math.round((map[i] / max) * 170) : 0;
      }
      hctx.putImageData(data, 0, 0);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(heat, LABEL_W + gap, y, cw, ch);
    }
    ctx.fillStyle = "#111111";
    ctx.fillText(label, gap, y + ch / 2);
  };
  draw(0, title.length > 12 ? `${title.slice(0, 11)}…` : title);
  rows.forEach((r, i) => draw(i + 1, `${r.label}  ${formatConfidence(r.probability)}`, r.map));
  return new Uint8Array(canvas.encodeSync("png"));
}

/**
 * A confidence as text: 4 decimals, and `<0.0001` below that (an untrained or unsure model's product of
 * probabilities is often 1e-9; "0.0000" would read as exactly zero).
 */
export function formatConfidence(c: number): string {
  if (!Number.isFinite(c)) return String(c);
  if (c < 0.0001) return "<0.0001";
  return c.toFixed(4);
}
