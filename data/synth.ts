/**
 * The synthetic word renderer: one text → one encoded word image, every
 * choice drawn from a per-sample PRNG so the same seed gives the same bytes.
 *
 * Per image: a font face, a size and a horizontal stretch (variable aspect
 * ratio), letter spacing; background colour, gradient or noise texture;
 * a text colour at least `min_contrast` (luminance difference) from the
 * background, sometimes an outline or a shadow; rotation and shear (canvas
 * transforms); a curved baseline (characters placed along a parabola);
 * perspective distortion, blur and pixel noise (one pixel pass); JPEG at a
 * random quality, or PNG.
 */
import type { Canvas, SKRSContext2D } from "@napi-rs/canvas";
import { homography } from "./augment.ts";
import type { FontFace } from "./fonts.ts";
import { canvasSync } from "./image.ts";
import type { Rng } from "./random.ts";

export interface RenderParams {
  /** Text height range in pixels (cap height + descenders, roughly). */
  font_size: number[];
  /** Horizontal stretch range (aspect ratio variation). */
  stretch: number[];
  /** Probability and max (× font size) of extra letter spacing. */
  spacing_p: number;
  spacing: number;
  /** Min luminance difference between text and background, 0..1. */
  min_contrast: number;
  gradient_p: number;
  texture_p: number;
  outline_p: number;
  shadow_p: number;
  /** Max rotation (degrees) and shear (tan of the angle). */
  rotation: number;
  shear: number;
  curve_p: number;
  /** Max sag of a curved baseline, × font size. */
  curve: number;
  perspective_p: number;
  /** Perspective corner pull, 0..1 (as ABINet's `distortion`). */
  perspective: number;
  blur_p: number;
  noise_p: number;
  /** Max pixel noise standard deviation (0..255). */
  noise: number;
  /** JPEG quality range; `png_p` of the images are PNG instead. */
  jpeg_quality: number[];
  png_p: number;
}

export const DEFAULT_RENDER: RenderParams = {
  font_size: [18, 32],
  stretch: [0.75, 1.3],
  spacing_p: 0.25,
  spacing: 0.25,
  min_contrast: 0.3,
  gradient_p: 0.3,
  texture_p: 0.3,
  outline_p: 0.1,
  shadow_p: 0.1,
  rotation: 5,
  shear: 0.3,
  curve_p: 0.15,
  curve: 0.5,
  perspective_p: 0.2,
  perspective: 0.3,
  blur_p: 0.2,
  noise_p: 0.3,
  noise: 12,
  jpeg_quality: [40, 95],
  png_p: 0.1,
};

export interface Rendered {
  bytes: Uint8Array;
  width: number;
  height: number;
  format: "jpeg" | "png";
  /** The text as drawn (upper-cased for caps-only fonts). */
  text: string;
}

type RGB = [number, number, number];

const luminance = ([r, g, b]: RGB) => (0.299 * r + 0.587 * g + 0.114 * b) / 255;
const css = ([r, g, b]: RGB, a = 1) => a === 1 ? `rgb(${r},${g},${b})` : `rgba(${r},${g},${b},${a})`;

function randomColour(rng: Rng): RGB {
  if (rng.chance(0.35)) {
    const v = rng.int(0, 255);
    return [v, v, v];
  }
  return [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)];
}

/** A colour at least `minContrast` away in luminance from all of `others`. */
function contrasting(rng: Rng, others: RGB[], minContrast: number): RGB {
  for (let i = 0; i < 30; i++) {
    const c = randomColour(rng);
    if (others.every((o) => Math.abs(luminance(c) - luminance(o)) >= minContrast)) return c;
  }
  const mean = others.reduce((a, o) => a + luminance(o), 0) / others.length;
  return mean > 0.5
    ? [rng.int(0, 30), rng.int(0, 30), rng.int(0, 30)]
    : [rng.int(225, 255), rng.int(225, 255), rng.int(225, 255)];
}

function shift(rng: Rng, c: RGB, amount: number): RGB {
  return c.map((v) => Math.max(0, Math.min(255, Math.round(v + rng.uniform(-amount, amount))))) as RGB;
}

function range(rng: Rng, r: number[]): number {
  return rng.uniform(r[0], r[1] ?? r[0]);
}

/** Renders `text` in `font`; all choices come from `rng`. */
export function renderWord(rng: Rng, rawText: string, font: FontFace, p: RenderParams): Rendered {
  const { createCanvas } = canvasSync();
  const text = font.capsOnly ? rawText.toUpperCase() : rawText;
  const px = Math.max(6, Math.round(range(rng, p.font_size)));
  const sx = range(rng, p.stretch);
  const spacing = rng.chance(p.spacing_p) ? rng.uniform(-0.03, p.spacing) * px : 0;
  const curved = text.length >= 3 && rng.chance(p.curve_p);
  const sag = curved ? rng.sym(p.curve) * px : 0;
  const angle = rng.sym(p.rotation) * Math.PI / 180;
  const shear = rng.sym(p.shear);

  // Measure with a scratch context.
  const measure = scratch().ctx;
  const fontCss = `${px}px "${font.alias}"`;
  measure.font = fontCss;
  const chars = [...text];
  // Per-character widths only for curved baselines; straight text uses the canvas's letterSpacing.
  const charW = curved ? chars.map((c) => measure.measureText(c).width + spacing) : [];
  const m = measure.measureText(text);
  const ascent = Math.max(m.actualBoundingBoxAscent, px * 0.5);
  const descent = Math.max(m.actualBoundingBoxDescent, px * 0.1);
  const textW = curved ? charW.reduce((a, b) => a + b, 0) : m.width + spacing * chars.length;
  const padX = rng.uniform(0.05, 0.6) * px, padY = rng.uniform(0.05, 0.35) * px;
  const blockW = textW * sx + 2 * padX;
  const blockH = ascent + descent + Math.abs(sag) + 2 * padY;

  // Canvas = bounding box of the rotated, sheared block.
  const cos = Math.cos(angle), sin = Math.sin(angle);
  // Transform: rotate · shear-x, around the block centre.
  const a = cos, b = sin, c = cos * shear - sin, d = sin * shear + cos;
  const corners = [[-1, -1], [1, -1], [1, 1], [-1, 1]].map(([u, v]) => {
    const x = (u * blockW) / 2, y = (v * blockH) / 2;
    return [a * x + c * y, b * x + d * y];
  });
  const W = Math.min(2048, Math.max(8, Math.ceil(Math.max(...corners.map((q) => q[0])) * 2)));
  const H = Math.min(512, Math.max(8, Math.ceil(Math.max(...corners.map((q) => q[1])) * 2)));
  const canvas: Canvas = createCanvas(W, H);
  const ctx = canvas.getContext("2d");

  // Background.
  const bg = randomColour(rng);
  let bgColours: RGB[] = [bg];
  if (rng.chance(p.gradient_p)) {
    const bg2 = shift(rng, bg, 90);
    bgColours = [bg, bg2];
    const t = rng.uniform(0, Math.PI);
    const gx = Math.cos(t) * W / 2, gy = Math.sin(t) * H / 2;
    const g = ctx.createLinearGradient(W / 2 - gx, H / 2 - gy, W / 2 + gx, H / 2 + gy);
    g.addColorStop(0, css(bg));
    g.addColorStop(1, css(bg2));
    ctx.fillStyle = g;
  } else {
    ctx.fillStyle = css(bg);
  }
  ctx.fillRect(0, 0, W, H);
  if (rng.chance(p.texture_p)) {
    const n = rng.int(3, 12);
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = css(shift(rng, bg, 60), rng.uniform(0.1, 0.4));
      if (rng.chance(0.5)) {
        ctx.beginPath();
        ctx.arc(rng.uniform(0, W), rng.uniform(0, H), rng.uniform(2, H), 0, 2 * Math.PI);
        ctx.fill();
      } else {
        ctx.save();
        ctx.translate(rng.uniform(0, W), rng.uniform(0, H));
        ctx.rotate(rng.uniform(0, Math.PI));
        ctx.fillRect(-W, -rng.uniform(0.5, 3), 2 * W, rng.uniform(1, 6));
        ctx.restore();
      }
    }
  }

  // Text.
  const fg = contrasting(rng, bgColours, p.min_contrast);
  const outline = rng.chance(p.outline_p) ? contrasting(rng, [fg], 0.4) : undefined;
  const shadow = rng.chance(p.shadow_p) ? shift(rng, bgColours[0], 120) : undefined;
  const shadowOffset = [rng.uniform(-0.08, 0.08) * px, rng.uniform(0.03, 0.1) * px];
  ctx.setTransform(a * sx, b * sx, c, d, W / 2, H / 2);
  ctx.font = fontCss;
  ctx.textBaseline = "alphabetic";
  if (spacing !== 0 && !curved) ctx.letterSpacing = `${spacing.toFixed(2)}px`;
  const baseY = -blockH / 2 + padY + ascent + (sag < 0 ? -sag : 0);
  const x0 = -textW / 2;
  const draw = (dx: number, dy: number, mode: "fill" | "stroke") => {
    if (!curved) {
      if (mode === "fill") ctx.fillText(text, x0 + dx + spacing / 2, baseY + dy);
      else ctx.strokeText(text, x0 + dx + spacing / 2, baseY + dy);
      return;
    }
    let x = x0;
    for (let i = 0; i < chars.length; i++) {
      const mid = x + charW[i] / 2;
      const u = textW > 0 ? (mid / (textW / 2)) : 0; // −1..1
      const y = baseY + sag * (1 - u * u);
      const slope = (-2 * sag * u) / (textW / 2);
      ctx.save();
      ctx.translate(mid + dx, y + dy);
      ctx.rotate(Math.atan(slope));
      if (mode === "fill") ctx.fillText(chars[i], -charW[i] / 2 + spacing / 2, 0);
      else ctx.strokeText(chars[i], -charW[i] / 2 + spacing / 2, 0);
      ctx.restore();
      x += charW[i];
    }
  };
  if (shadow) {
    ctx.fillStyle = css(shadow, 0.7);
    draw(shadowOffset[0], shadowOffset[1], "fill");
  }
  ctx.fillStyle = css(fg);
  draw(0, 0, "fill");
  if (outline) {
    ctx.strokeStyle = css(outline);
    ctx.lineWidth = Math.max(1, px / 24);
    draw(0, 0, "stroke");
  }
  ctx.setTransform(1, 0, 0, 1, 0, 0);

  // Pixel pass: perspective, blur, noise.
  const perspective = rng.chance(p.perspective_p);
  const blur = rng.chance(p.blur_p);
  const noise = rng.chance(p.noise_p) ? rng.uniform(1, p.noise) : 0;
  let out: Canvas = canvas;
  let outCtx: SKRSContext2D = ctx;
  if (perspective || blur || noise > 0) {
    let img = ctx.getImageData(0, 0, W, H);
    let [w, h] = [W, H];
    if (perspective) {
      const pull = (side: number) => rng.asym((p.perspective * side) / 2);
      const dst: [number, number][] = [[pull(W), pull(H)], [W - pull(W), pull(H)], [W - pull(W), H - pull(H)], [
        pull(W),
        H - pull(H),
      ]];
      const x0b = Math.min(...dst.map((q) => q[0])), y0b = Math.min(...dst.map((q) => q[1]));
      w = Math.max(8, Math.round(Math.max(...dst.map((q) => q[0])) - x0b));
      h = Math.max(8, Math.round(Math.max(...dst.map((q) => q[1])) - y0b));
      // Inverse map: destination → source.
      const inv = homography(dst.map(([x, y]) => [x - x0b, y - y0b]), [[0, 0], [W, 0], [W, H], [0, H]]);
      const src = img.data;
      const warped = new Uint8ClampedArray(w * h * 4);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const X = x + 0.5, Y = y + 0.5;
          const q = inv[6] * X + inv[7] * Y + inv[8];
          const u = Math.min(W - 1, Math.max(0, Math.floor((inv[0] * X + inv[1] * Y + inv[2]) / q)));
          const v = Math.min(H - 1, Math.max(0, Math.floor((inv[3] * X + inv[4] * Y + inv[5]) / q)));
          const si = (v * W + u) * 4, di = (y * w + x) * 4;
          warped[di] = src[si];
          warped[di + 1] = src[si + 1];
          warped[di + 2] = src[si + 2];
          warped[di + 3] = 255;
        }
      }
      out = createCanvas(w, h);
      outCtx = out.getContext("2d");
      img = outCtx.createImageData(w, h);
      img.data.set(warped);
    }
    const data = img.data;
    if (blur) {
      // 3×3 binomial blur, once or twice.
      const passes = rng.chance(0.3) ? 2 : 1;
      const tmp = new Float32Array(w * h * 4);
      for (let pass = 0; pass < passes; pass++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const xl = x > 0 ? x - 1 : x, xr = x < w - 1 ? x + 1 : x;
            for (let ch = 0; ch < 3; ch++) {
              const r = y * w * 4;
              tmp[r + x * 4 + ch] = (data[r + xl * 4 + ch] + 2 * data[r + x * 4 + ch] + data[r + xr * 4 + ch]) / 4;
            }
          }
        }
        for (let y = 0; y < h; y++) {
          const yu = y > 0 ? y - 1 : y, yd = y < h - 1 ? y + 1 : y;
          for (let x = 0; x < w; x++) {
            for (let ch = 0; ch < 3; ch++) {
              const i = x * 4 + ch;
              data[y * w * 4 + i] = (tmp[yu * w * 4 + i] + 2 * tmp[y * w * 4 + i] + tmp[yd * w * 4 + i]) / 4;
            }
          }
        }
      }
    }
    if (noise > 0) {
      const mono = rng.chance(0.5);
      // Approximately Gaussian (a sum of three uniforms, unit variance): much cheaper than Box–Muller.
      const k = noise * 2;
      const g = () => (rng.next() + rng.next() + rng.next() - 1.5) * k;
      for (let i = 0; i < data.length; i += 4) {
        const n0 = g();
        data[i] += n0;
        data[i + 1] += mono ? n0 : g();
        data[i + 2] += mono ? n0 : g();
      }
    }
    outCtx.putImageData(img, 0, 0);
  }

  const png = rng.chance(p.png_p);
  const quality = Math.round(range(rng, p.jpeg_quality));
  const buf = png ? out.encodeSync("png") : out.encodeSync("jpeg", quality);
  return {
    bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength),
    width: out.width,
    height: out.height,
    format: png ? "png" : "jpeg",
    text,
  };
}

let scratchCanvas: { canvas: Canvas; ctx: SKRSContext2D } | undefined;

function scratch() {
  if (!scratchCanvas) {
    const canvas: Canvas = canvasSync().createCanvas(8, 8);
    scratchCanvas = { canvas, ctx: canvas.getContext("2d") };
  }
  return scratchCanvas;
}
