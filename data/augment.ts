/**
 * ABINet's train-time augmentation (FangShancheng/ABINet `transforms.py`,
 * as its dataset configures it), seeded per sample:
 *
 * - geometry (p 0.5): one of rotation (≤ 45°, canvas expanded to fit),
 *   affine (rotation, scale 0.5–2, shear 45°/15°, canvas expanded to the
 *   bounding box) or perspective (corners pulled in by up to `distortion` ·
 *   half the side, cropped to the bounding box). ABINet draws the type once
 *   per data set (a quirk of its constructor); here it is drawn per sample.
 *   Border pixels are replicated, as with cv2.BORDER_REPLICATE.
 * - deterioration (p 0.25): Gaussian noise, motion blur and down-up
 *   rescaling, in random order.
 * - colour jitter (p 0.25): brightness, contrast, saturation, hue, in random order.
 *
 * Geometry is fused with the resize: each output pixel is mapped back
 * through the inverse transform into the source (drawn at a resolution a bit
 * above the output's) and sampled bilinearly. Deterioration and jitter work
 * on the H×W result (ABINet applies them before its resize); the rescale
 * pyramid is expressed relative to ABINet's 128×512 base, 4× the 32×128 output.
 */
import { type DecodedImage, drawRgba, resizeRgb } from "./image.ts";
import type { Rng } from "./random.ts";

export interface GeometryParams {
  p: number;
  /** Max rotation in degrees (rotation and affine). */
  degrees: number;
  /** Affine scale range. */
  scale: number[];
  /** Max shear in degrees along x and y. */
  shear_x: number;
  shear_y: number;
  /** Max translation as a fraction of the height (ABINet uses 0). */
  translate: number;
  /** Perspective distortion, 0..1. */
  distortion: number;
  /** Relative weights of rotation, affine and perspective. */
  types: number[];
}

export interface DeteriorationParams {
  p: number;
  /** Max Gaussian noise variance (0..255 scale). */
  noise_var: number;
  /** Max motion-blur kernel size in pixels. */
  blur: number;
  /** Max pyramid levels below the 4×-size base (ABINet's `factor`). */
  rescale_factor: number;
}

export interface ColorJitterParams {
  p: number;
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

export interface AugmentParams {
  geometry: GeometryParams;
  deterioration: DeteriorationParams;
  color_jitter: ColorJitterParams;
}

export const ABINET_AUGMENT: AugmentParams = {
  geometry: {
    p: 0.5,
    degrees: 45,
    scale: [0.5, 2],
    shear_x: 45,
    shear_y: 15,
    translate: 0,
    distortion: 0.5,
    types: [1, 1, 1],
  },
  deterioration: { p: 0.25, noise_var: 20, blur: 6, rescale_factor: 4 },
  color_jitter: { p: 0.25, brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.1 },
};

/** 3×3 row-major matrices. */
type M3 = [number, number, number, number, number, number, number, number, number];

function mul(a: M3, b: M3): M3 {
  const o = new Array(9).fill(0) as M3;
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) o[r * 3 + c] = a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c];
  }
  return o;
}

function invert(m: M3): M3 {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  const k = 1 / det;
  return [
    A * k,
    -(b * i - c * h) * k,
    (b * f - c * e) * k,
    B * k,
    (a * i - c * g) * k,
    -(a * f - c * d) * k,
    C * k,
    -(a * h - b * g) * k,
    (a * e - b * d) * k,
  ];
}

function apply(m: M3, x: number, y: number): [number, number] {
  const w = m[6] * x + m[7] * y + m[8];
  return [(m[0] * x + m[1] * y + m[2]) / w, (m[3] * x + m[4] * y + m[5]) / w];
}

/** The homography mapping four points `src` onto four points `dst`. */
export function homography(src: [number, number][], dst: [number, number][]): M3 {
  // 8 unknowns, h22 = 1; Gaussian elimination with partial pivoting.
  const a: number[][] = [];
  for (let k = 0; k < 4; k++) {
    const [x, y] = src[k], [u, v] = dst[k];
    a.push([x, y, 1, 0, 0, 0, -u * x, -u * y, u]);
    a.push([0, 0, 0, x, y, 1, -v * x, -v * y, v]);
  }
  for (let col = 0; col < 8; col++) {
    let piv = col;
    for (let r = col + 1; r < 8; r++) if (Math.abs(a[r][col]) > Math.abs(a[piv][col])) piv = r;
    [a[col], a[piv]] = [a[piv], a[col]];
    for (let r = 0; r < 8; r++) {
      if (r === col) continue;
      const f = a[r][col] / a[col][col];
      for (let c = col; c < 9; c++) a[r][c] -= f * a[col][c];
    }
  }
  const h = a.map((row, r) => row[8] / row[r]);
  return [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1];
}

/** A sampled source→destination transform and the destination box it covers. */
interface Warp {
  forward: M3;
  box: { x0: number; y0: number; x1: number; y1: number };
}

function boxOf(m: M3, w: number, h: number) {
  const pts = [apply(m, 0, 0), apply(m, w, 0), apply(m, w, h), apply(m, 0, h)];
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  return { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
}

/** Draws a random geometric transform of a w×h source, ABINet-style. */
export function sampleWarp(rng: Rng, g: GeometryParams, w: number, h: number): Warp {
  const total = g.types.reduce((a, b) => a + Math.max(0, b), 0) || 1;
  let r = rng.next() * total;
  let type = 0;
  while (type < 2 && r >= Math.max(0, g.types[type])) r -= Math.max(0, g.types[type++]);
  const cx = w / 2, cy = h / 2;
  const toCenter: M3 = [1, 0, -cx, 0, 1, -cy, 0, 0, 1];
  if (type === 0 || type === 1) {
    const rot = (rng.sym(g.degrees) * Math.PI) / 180;
    let m: M3;
    if (type === 0) {
      m = [Math.cos(rot), Math.sin(rot), 0, -Math.sin(rot), Math.cos(rot), 0, 0, 0, 1];
    } else {
      const [lo, hi] = [g.scale[0] ?? 1, g.scale[1] ?? g.scale[0] ?? 1];
      const s = rng.uniform(lo, hi);
      const sx = (rng.sym(g.shear_x) * Math.PI) / 180;
      const sy = (rng.sym(g.shear_y) * Math.PI) / 180;
      // torchvision's RSS: rotation · shear, scaled (as ABINet's inverse-affine helper, forward form).
      const a = Math.cos(rot - sy) / Math.cos(sy);
      const b = -Math.cos(rot - sy) * Math.tan(sx) / Math.cos(sy) - Math.sin(rot);
      const c = Math.sin(rot - sy) / Math.cos(sy);
      const d = -Math.sin(rot - sy) * Math.tan(sx) / Math.cos(sy) + Math.cos(rot);
      m = [a * s, b * s, 0, c * s, d * s, 0, 0, 0, 1];
    }
    const forward = mul(m, toCenter);
    const box = boxOf(forward, w, h);
    const t = g.translate * h;
    if (t > 0) {
      const tx = rng.sym(t), ty = rng.sym(t);
      if (tx < 0) box.x0 += tx;
      else box.x1 += tx;
      if (ty < 0) box.y0 += ty;
      else box.y1 += ty;
    }
    return { forward, box };
  }
  const ow = () => rng.asym((g.distortion * w) / 2);
  const oh = () => rng.asym((g.distortion * h) / 2);
  const dst: [number, number][] = [[ow(), oh()], [w - ow(), oh()], [w - ow(), h - oh()], [ow(), h - oh()]];
  const forward = homography([[0, 0], [w, 0], [w, h], [0, h]], dst);
  const xs = dst.map((p) => p[0]), ys = dst.map((p) => p[1]);
  return { forward, box: { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) } };
}

/**
 * Geometry fused with the resize: the warped image, stretched to H×W, as
 * HWC RGB 0..255 floats in `out`.
 */
export function warpResize(
  img: DecodedImage,
  warp: (w: number, h: number) => Warp,
  height: number,
  width: number,
  out: Float32Array,
): Float32Array {
  const w0 = img.width, h0 = img.height;
  const { forward, box } = warp(w0, h0);
  const bw = Math.max(box.x1 - box.x0, 1e-3), bh = Math.max(box.y1 - box.y0, 1e-3);
  // Source resolution: enough that one output pixel spans at most ~1.5 source pixels.
  const s = Math.min(1, 1.5 * Math.max(width / bw, height / bh));
  const sw = Math.max(1, Math.round(w0 * s)), sh = Math.max(1, Math.round(h0 * s));
  const src = drawRgba(img, sw, sh);
  const inv = invert(forward);
  const kx = w0 / sw, ky = h0 / sh;
  for (let y = 0; y < height; y++) {
    const dy = box.y0 + ((y + 0.5) * bh) / height;
    for (let x = 0; x < width; x++) {
      const dx = box.x0 + ((x + 0.5) * bw) / width;
      const wq = inv[6] * dx + inv[7] * dy + inv[8];
      // Source coordinates in original pixels, then in the drawn source's pixel centres.
      let u = (inv[0] * dx + inv[1] * dy + inv[2]) / wq / kx - 0.5;
      let v = (inv[3] * dx + inv[4] * dy + inv[5]) / wq / ky - 0.5;
      u = u < 0 ? 0 : u > sw - 1 ? sw - 1 : u;
      v = v < 0 ? 0 : v > sh - 1 ? sh - 1 : v;
      const u0 = Math.floor(u), v0 = Math.floor(v);
      const u1 = u0 + 1 < sw ? u0 + 1 : u0, v1 = v0 + 1 < sh ? v0 + 1 : v0;
      const fu = u - u0, fv = v - v0;
      const i00 = (v0 * sw + u0) * 4, i01 = (v0 * sw + u1) * 4, i10 = (v1 * sw + u0) * 4, i11 = (v1 * sw + u1) * 4;
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const top = src[i00 + c] + (src[i01 + c] - src[i00 + c]) * fu;
        const bottom = src[i10 + c] + (src[i11 + c] - src[i10 + c]) * fu;
        out[o + c] = top + (bottom - top) * fv;
      }
    }
  }
  return out;
}

function gaussianNoise(rgb: Float32Array, rng: Rng, maxVar: number): void {
  const std = Math.sqrt(Math.max(Math.floor(rng.asym(maxVar)), 1));
  for (let i = 0; i < rgb.length; i++) rgb[i] += rng.normal() * std;
}

function motionBlur(rgb: Float32Array, rng: Rng, maxSize: number, h: number, w: number): void {
  const size = Math.max(Math.floor(rng.asym(maxSize)), 1);
  const angle = (rng.uniform(-90, 90) * Math.PI) / 180;
  if (size <= 1) return;
  const taps: [number, number][] = [];
  for (let k = 0; k < size; k++) {
    const t = k - (size - 1) / 2;
    taps.push([Math.round(t * Math.cos(angle)), Math.round(-t * Math.sin(angle))]);
  }
  const src = rgb.slice();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0, g = 0, b = 0;
      for (const [dx, dy] of taps) {
        const xx = Math.min(w - 1, Math.max(0, x + dx)), yy = Math.min(h - 1, Math.max(0, y + dy));
        const i = (yy * w + xx) * 3;
        r += src[i];
        g += src[i + 1];
        b += src[i + 2];
      }
      const o = (y * w + x) * 3;
      rgb[o] = r / size;
      rgb[o + 1] = g / size;
      rgb[o + 2] = b / size;
    }
  }
}

function rescale(rgb: Float32Array, rng: Rng, factor: number, h: number, w: number): void {
  const levels = Math.round(rng.uniform(0, factor));
  // ABINet's base is 4× the 32×128 output: levels 0..2 do not go below the output size.
  const down = Math.pow(2, levels) / 4;
  if (down <= 1) return;
  const sh = Math.max(1, Math.round(h / down)), sw = Math.max(1, Math.round(w / down));
  const small = new Float32Array(sh * sw * 3);
  // Box filter down.
  for (let y = 0; y < sh; y++) {
    const ya = Math.floor((y * h) / sh), yb = Math.max(ya + 1, Math.floor(((y + 1) * h) / sh));
    for (let x = 0; x < sw; x++) {
      const xa = Math.floor((x * w) / sw), xb = Math.max(xa + 1, Math.floor(((x + 1) * w) / sw));
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let yy = ya; yy < yb; yy++) for (let xx = xa; xx < xb; xx++) s += rgb[(yy * w + xx) * 3 + c];
        small[(y * sw + x) * 3 + c] = s / ((yb - ya) * (xb - xa));
      }
    }
  }
  // Bilinear up.
  for (let y = 0; y < h; y++) {
    let v = ((y + 0.5) * sh) / h - 0.5;
    v = Math.min(sh - 1, Math.max(0, v));
    const v0 = Math.floor(v), v1 = Math.min(sh - 1, v0 + 1), fv = v - v0;
    for (let x = 0; x < w; x++) {
      let u = ((x + 0.5) * sw) / w - 0.5;
      u = Math.min(sw - 1, Math.max(0, u));
      const u0 = Math.floor(u), u1 = Math.min(sw - 1, u0 + 1), fu = u - u0;
      for (let c = 0; c < 3; c++) {
        const a = small[(v0 * sw + u0) * 3 + c], b = small[(v0 * sw + u1) * 3 + c];
        const d = small[(v1 * sw + u0) * 3 + c], e = small[(v1 * sw + u1) * 3 + c];
        const top = a + (b - a) * fu, bottom = d + (e - d) * fu;
        rgb[(y * w + x) * 3 + c] = top + (bottom - top) * fv;
      }
    }
  }
}

function clampAll(rgb: Float32Array): void {
  for (let i = 0; i < rgb.length; i++) rgb[i] = rgb[i] < 0 ? 0 : rgb[i] > 255 ? 255 : rgb[i];
}

function colorJitter(rgb: Float32Array, rng: Rng, p: ColorJitterParams): void {
  const n = rgb.length / 3;
  const ops = rng.shuffle([0, 1, 2, 3]);
  for (const op of ops) {
    if (op === 0 && p.brightness > 0) {
      const f = rng.uniform(Math.max(0, 1 - p.brightness), 1 + p.brightness);
      for (let i = 0; i < rgb.length; i++) rgb[i] *= f;
    } else if (op === 1 && p.contrast > 0) {
      const f = rng.uniform(Math.max(0, 1 - p.contrast), 1 + p.contrast);
      let mean = 0;
      for (let i = 0; i < n; i++) mean += 0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2];
      mean /= n;
      for (let i = 0; i < rgb.length; i++) rgb[i] = mean + (rgb[i] - mean) * f;
    } else if (op === 2 && p.saturation > 0) {
      const f = rng.uniform(Math.max(0, 1 - p.saturation), 1 + p.saturation);
      for (let i = 0; i < n; i++) {
        const g = 0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2];
        for (let c = 0; c < 3; c++) rgb[i * 3 + c] = g + (rgb[i * 3 + c] - g) * f;
      }
    } else if (op === 3 && p.hue > 0) {
      // Hue rotation in YIQ space by up to hue · 360°.
      const th = rng.uniform(-p.hue, p.hue) * 2 * Math.PI;
      const cos = Math.cos(th), sin = Math.sin(th);
      for (let i = 0; i < n; i++) {
        const r = rgb[i * 3], g = rgb[i * 3 + 1], b = rgb[i * 3 + 2];
        const y = 0.299 * r + 0.587 * g + 0.114 * b;
        const ii = 0.596 * r - 0.274 * g - 0.322 * b;
        const q = 0.211 * r - 0.523 * g + 0.312 * b;
        const i2 = ii * cos - q * sin, q2 = ii * sin + q * cos;
        rgb[i * 3] = y + 0.956 * i2 + 0.621 * q2;
        rgb[i * 3 + 1] = y - 0.272 * i2 - 0.647 * q2;
        rgb[i * 3 + 2] = y - 1.106 * i2 + 1.703 * q2;
      }
    }
    clampAll(rgb);
  }
}

/**
 * Resizes `img` to H×W into `out` (HWC RGB 0..255) and, when `params` is
 * given, applies the augmentations drawn from `rng`.
 */
export function augmentResize(
  img: DecodedImage,
  height: number,
  width: number,
  out: Float32Array,
  rng: Rng | undefined,
  params: AugmentParams | undefined,
): Float32Array {
  if (!rng || !params) return resizeRgb(img, height, width, out);
  if (params.geometry.p > 0 && rng.chance(params.geometry.p)) {
    warpResize(img, (w, h) => sampleWarp(rng, params.geometry, w, h), height, width, out);
  } else {
    resizeRgb(img, height, width, out);
  }
  const d = params.deterioration;
  if (d.p > 0 && rng.chance(d.p)) {
    for (const op of rng.shuffle([0, 1, 2])) {
      if (op === 0 && d.noise_var > 0) gaussianNoise(out, rng, d.noise_var);
      else if (op === 1 && d.blur > 0) motionBlur(out, rng, d.blur, height, width);
      else if (op === 2 && d.rescale_factor > 0) rescale(out, rng, d.rescale_factor, height, width);
    }
    clampAll(out);
  }
  if (params.color_jitter.p > 0 && rng.chance(params.color_jitter.p)) colorJitter(out, rng, params.color_jitter);
  return out;
}
