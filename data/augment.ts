/**
 * ABINet's train-time augmentation (FangShancheng/ABINet `transforms.py`,
 * as its dataset configures it), seeded per sample:
 *
 * - geometry (p 0.5): one of rotation (≤ 45°, canvas expanded to fit),
 *   affine (rotation, scale 0.5–2, shear 45°/15°, canvas expanded to the
 *   bounding box) or perspective (corners pulled in by up to `distortion` ·
 *   half the side, cropped to the bounding box). ABINet draws the type once
 *   per data set (a quirk of its constructor); here it is drawn per sample.
 *   Where the transformed image does not reach: the mean colour of its border.
 * - deterioration (p 0.25): Gaussian noise, motion blur and down-up
 *   rescaling, in random order.
 * - colour jitter (p 0.25): brightness, contrast, saturation, hue, in random order.
 *
 * Geometry is fused with the resize: rotation and affine transforms are one
 * native canvas draw into the H×W output (where the image does not reach:
 * the mean colour of its border, instead of cv2.BORDER_REPLICATE); for perspective each output pixel
 * is mapped back through the inverse homography into the source (stretched
 * to the output size by the canvas) and sampled bilinearly. Deterioration and jitter work
 * on the H×W result (ABINet applies them before its resize); the rescale
 * pyramid is expressed relative to ABINet's 128×512 base, 4× the 32×128 output.
 */
import { type DecodedImage, drawAffineRgba, drawRgba, resizeRgb } from "./image.ts";
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
  if (forward[6] === 0 && forward[7] === 0 && forward[8] === 1) {
    // Affine (rotation, affine types): one native canvas draw.
    const kx = width / bw, ky = height / bh;
    const rgba = drawAffineRgba(img, width, height, [
      forward[0] * kx,
      forward[3] * ky,
      forward[1] * kx,
      forward[4] * ky,
      (forward[2] - box.x0) * kx,
      (forward[5] - box.y0) * ky,
    ]);
    for (let p = 0, q = 0; p < width * height * 3; p += 3, q += 4) {
      out[p] = rgba[q];
      out[p + 1] = rgba[q + 1];
      out[p + 2] = rgba[q + 2];
    }
    return out;
  }
  // Perspective: the source is sampled from the image stretched to the output size: the transforms (expanded to
  // their bounding box) never magnify much, so this keeps detail, and the stretch is one native draw.
  const sw = width, sh = height;
  const src = drawRgba(img, sw, sh);
  const inv = invert(forward);
  // Output pixel (x, y) → box point → source point (original pixels) → drawn-source pixel centres.
  // Numerators and denominator are affine in x along a row: step them.
  const kx = sw / w0, ky = sh / h0;
  const sx = bw / width, sy = bh / height;
  const maxU = sw - 1, maxV = sh - 1;
  for (let y = 0; y < height; y++) {
    const dy = box.y0 + (y + 0.5) * sy;
    const dx0 = box.x0 + 0.5 * sx;
    let nu = inv[0] * dx0 + inv[1] * dy + inv[2];
    let nv = inv[3] * dx0 + inv[4] * dy + inv[5];
    let q = inv[6] * dx0 + inv[7] * dy + inv[8];
    const du = inv[0] * sx, dv = inv[3] * sx, dq = inv[6] * sx;
    let o = y * width * 3;
    const affine = dq === 0 && q === 1;
    for (let x = 0; x < width; x++, nu += du, nv += dv, q += dq, o += 3) {
      let u = affine ? nu * kx - 0.5 : (nu / q) * kx - 0.5;
      let v = affine ? nv * ky - 0.5 : (nv / q) * ky - 0.5;
      u = u < 0 ? 0 : u > maxU ? maxU : u;
      v = v < 0 ? 0 : v > maxV ? maxV : v;
      const u0 = u | 0, v0 = v | 0;
      const fu = u - u0, fv = v - v0;
      const i00 = (v0 * sw + u0) * 4;
      const i01 = u0 < maxU ? i00 + 4 : i00;
      const i10 = v0 < maxV ? i00 + sw * 4 : i00;
      const i11 = u0 < maxU ? i10 + 4 : i10;
      const w00 = (1 - fu) * (1 - fv), w01 = fu * (1 - fv), w10 = (1 - fu) * fv, w11 = fu * fv;
      out[o] = src[i00] * w00 + src[i01] * w01 + src[i10] * w10 + src[i11] * w11;
      out[o + 1] = src[i00 + 1] * w00 + src[i01 + 1] * w01 + src[i10 + 1] * w10 + src[i11 + 1] * w11;
      out[o + 2] = src[i00 + 2] * w00 + src[i01 + 2] * w01 + src[i10 + 2] * w10 + src[i11 + 2] * w11;
    }
  }
  return out;
}

/** 4096 standard normal values, made once (Box–Muller from a fixed seed): noise indexes into it. */
const NORMALS = (() => {
  const t = new Float32Array(4096);
  let x = 0x9e3779b9;
  const u = () => ((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0) >>> 0) / 4294967296;
  for (let i = 0; i < t.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u())), th = 2 * Math.PI * u();
    t[i] = r * Math.cos(th);
    t[i + 1] = r * Math.sin(th);
  }
  return t;
})();

function gaussianNoise(rgb: Float32Array, rng: Rng, maxVar: number): void {
  const std = Math.sqrt(Math.max(Math.floor(rng.asym(maxVar)), 1));
  // A random start and odd stride through the table: a different noise field per sample, at table speed.
  let j = Math.floor(rng.next() * 4096);
  const stride = 2 * Math.floor(rng.next() * 1024) + 1;
  for (let i = 0; i < rgb.length; i++) {
    const v = rgb[i] + NORMALS[j] * std;
    rgb[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    j = (j + stride) & 4095;
  }
}

function motionBlur(rgb: Float32Array, rng: Rng, maxSize: number, h: number, w: number): void {
  const size = Math.max(Math.floor(rng.asym(maxSize)), 1);
  const angle = (rng.uniform(-90, 90) * Math.PI) / 180;
  if (size <= 1) return;
  const tx = new Int32Array(size), ty = new Int32Array(size);
  for (let k = 0; k < size; k++) {
    const t = k - (size - 1) / 2;
    tx[k] = Math.round(t * Math.cos(angle));
    ty[k] = Math.round(-t * Math.sin(angle));
  }
  const src = rgb.slice();
  const inv = 1 / size;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < size; k++) {
        let xx = x + tx[k], yy = y + ty[k];
        xx = xx < 0 ? 0 : xx >= w ? w - 1 : xx;
        yy = yy < 0 ? 0 : yy >= h ? h - 1 : yy;
        const i = (yy * w + xx) * 3;
        r += src[i];
        g += src[i + 1];
        b += src[i + 2];
      }
      const o = (y * w + x) * 3;
      rgb[o] = r * inv;
      rgb[o + 1] = g * inv;
      rgb[o + 2] = b * inv;
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
      let r = 0, g = 0, b = 0;
      for (let yy = ya; yy < yb; yy++) {
        for (let xx = xa; xx < xb; xx++) {
          const i = (yy * w + xx) * 3;
          r += rgb[i];
          g += rgb[i + 1];
          b += rgb[i + 2];
        }
      }
      const k = 1 / ((yb - ya) * (xb - xa)), o = (y * sw + x) * 3;
      small[o] = r * k;
      small[o + 1] = g * k;
      small[o + 2] = b * k;
    }
  }
  // Bilinear up.
  for (let y = 0; y < h; y++) {
    let v = ((y + 0.5) * sh) / h - 0.5;
    v = v < 0 ? 0 : v > sh - 1 ? sh - 1 : v;
    const v0 = Math.floor(v), v1 = v0 + 1 < sh ? v0 + 1 : v0, fv = v - v0;
    for (let x = 0; x < w; x++) {
      let u = ((x + 0.5) * sw) / w - 0.5;
      u = u < 0 ? 0 : u > sw - 1 ? sw - 1 : u;
      const u0 = Math.floor(u), u1 = u0 + 1 < sw ? u0 + 1 : u0, fu = u - u0;
      const a = (v0 * sw + u0) * 3, b = (v0 * sw + u1) * 3, d = (v1 * sw + u0) * 3, e = (v1 * sw + u1) * 3;
      const o = (y * w + x) * 3;
      for (let c = 0; c < 3; c++) {
        const top = small[a + c] + (small[b + c] - small[a + c]) * fu;
        const bottom = small[d + c] + (small[e + c] - small[d + c]) * fu;
        rgb[o + c] = top + (bottom - top) * fv;
      }
    }
  }
}

/** 3×4 affine colour maps (row-major [m00 m01 m02 b0; …]). */
type Affine = Float64Array;

function composeAffine(second: Affine, first: Affine): Affine {
  const o = new Float64Array(12);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      o[r * 4 + c] = second[r * 4] * first[c] + second[r * 4 + 1] * first[4 + c] + second[r * 4 + 2] * first[8 + c];
    }
    o[r * 4 + 3] = second[r * 4] * first[3] + second[r * 4 + 1] * first[7] + second[r * 4 + 2] * first[11] +
      second[r * 4 + 3];
  }
  return o;
}

const LUMA = [0.299, 0.587, 0.114];

/**
 * Colour jitter (brightness, contrast, saturation, hue in random order, as
 * torchvision's ColorJitter), composed into one affine colour map and applied
 * in one pass with a final clamp (torchvision clamps after each step; the
 * difference only shows on saturated pixels).
 */
function colorJitter(rgb: Float32Array, rng: Rng, p: ColorJitterParams): void {
  const n = rgb.length / 3;
  // Channel means of the input: the contrast step needs the mean grey at its point in the chain.
  let mr = 0, mg = 0, mb = 0;
  for (let i = 0; i < rgb.length; i += 3) {
    mr += rgb[i];
    mg += rgb[i + 1];
    mb += rgb[i + 2];
  }
  const mean = [mr / n, mg / n, mb / n];
  let m: Affine = new Float64Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
  const meanAfter = () =>
    [0, 1, 2].map((r) => m[r * 4] * mean[0] + m[r * 4 + 1] * mean[1] + m[r * 4 + 2] * mean[2] + m[r * 4 + 3]);
  for (const op of rng.shuffle([0, 1, 2, 3])) {
    let step: Affine | undefined;
    if (op === 0 && p.brightness > 0) {
      const f = rng.uniform(Math.max(0, 1 - p.brightness), 1 + p.brightness);
      step = new Float64Array([f, 0, 0, 0, 0, f, 0, 0, 0, 0, f, 0]);
    } else if (op === 1 && p.contrast > 0) {
      const f = rng.uniform(Math.max(0, 1 - p.contrast), 1 + p.contrast);
      const mu = meanAfter();
      const grey = LUMA[0] * mu[0] + LUMA[1] * mu[1] + LUMA[2] * mu[2];
      const off = (1 - f) * grey;
      step = new Float64Array([f, 0, 0, off, 0, f, 0, off, 0, 0, f, off]);
    } else if (op === 2 && p.saturation > 0) {
      const f = rng.uniform(Math.max(0, 1 - p.saturation), 1 + p.saturation);
      step = new Float64Array(12);
      for (let r = 0; r < 3; r++) {
        for (let c = 0; c < 3; c++) step[r * 4 + c] = (1 - f) * LUMA[c] + (r === c ? f : 0);
      }
    } else if (op === 3 && p.hue > 0) {
      // Hue rotation in YIQ space by up to hue · 360°.
      const th = rng.uniform(-p.hue, p.hue) * 2 * Math.PI;
      const cos = Math.cos(th), sin = Math.sin(th);
      const toYiq = [0.299, 0.587, 0.114, 0.596, -0.274, -0.322, 0.211, -0.523, 0.312];
      const rot = [1, 0, 0, 0, cos, -sin, 0, sin, cos];
      const fromYiq = [1, 0.956, 0.621, 1, -0.272, -0.647, 1, -1.106, 1.703];
      const mul3 = (a: number[], b: number[]) =>
        [0, 1, 2].flatMap((r) =>
          [0, 1, 2].map((c) => a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c])
        );
      const h = mul3(fromYiq, mul3(rot, toYiq));
      step = new Float64Array([h[0], h[1], h[2], 0, h[3], h[4], h[5], 0, h[6], h[7], h[8], 0]);
    }
    if (step) m = composeAffine(step, m);
  }
  const [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3] = m;
  for (let i = 0; i < rgb.length; i += 3) {
    const r = rgb[i], g = rgb[i + 1], b = rgb[i + 2];
    const R = a0 * r + a1 * g + a2 * b + a3, G = b0 * r + b1 * g + b2 * b + b3, B = c0 * r + c1 * g + c2 * b + c3;
    rgb[i] = R < 0 ? 0 : R > 255 ? 255 : R;
    rgb[i + 1] = G < 0 ? 0 : G > 255 ? 255 : G;
    rgb[i + 2] = B < 0 ? 0 : B > 255 ? 255 : B;
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
  return augmentPixels(out, height, width, rng, params);
}

/**
 * The pixel-level part (deterioration, colour jitter) on an HWC RGB 0..255
 * image, in place. Draws from `rng` in the same order as `augmentResize`.
 */
export function augmentPixels(
  out: Float32Array,
  height: number,
  width: number,
  rng: Rng,
  params: AugmentParams,
): Float32Array {
  const d = params.deterioration;
  if (d.p > 0 && rng.chance(d.p)) {
    for (const op of rng.shuffle([0, 1, 2])) {
      if (op === 0 && d.noise_var > 0) gaussianNoise(out, rng, d.noise_var);
      else if (op === 1 && d.blur > 0) motionBlur(out, rng, d.blur, height, width);
      else if (op === 2 && d.rescale_factor > 0) rescale(out, rng, d.rescale_factor, height, width);
    }
    // Blur and rescaling are convex combinations and noise clamps itself: values stay in 0..255.
  }
  if (params.color_jitter.p > 0 && rng.chance(params.color_jitter.p)) colorJitter(out, rng, params.color_jitter);
  return out;
}
