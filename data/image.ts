/**
 * Image decoding (JPEG/PNG/…; grey, RGB, RGBA) with @napi-rs/canvas, stretch
 * resizing to the model's H×W as ABINet does, and normalisation into NHWC
 * float32. RGBA images are composited over white (PIL's `convert('RGB')`
 * drops alpha instead, which turns transparent backgrounds black).
 *
 * The canvas module is loaded lazily so that importing this file is cheap.
 */
import type { Canvas, Image, SKRSContext2D } from "@napi-rs/canvas";

type CanvasModule = typeof import("@napi-rs/canvas");
export type DecodedImage = Image;

let canvasModule: CanvasModule | undefined;

export async function loadCanvas(): Promise<CanvasModule> {
  return canvasModule ??= await import("@napi-rs/canvas");
}

/** The canvas module, after `loadCanvas()` has resolved once. */
export function canvasSync(): CanvasModule {
  if (!canvasModule) throw new Error("call `await loadCanvas()` first");
  return canvasModule;
}

export type Normalize = "imagenet" | "unit" | "symmetric";

export interface ImageSpec {
  height: number;
  width: number;
  /** 3 = RGB, 1 = luminance. */
  channels: 1 | 3;
  /**
   * `imagenet`: (x/255 − mean)/std with ImageNet's mean and std (luminance: their averages); `unit`: x/255;
   * `symmetric`: (x/255 − 0.5)/0.5 in [−1, 1] (strhub / PARSeq's `Normalize(0.5, 0.5)`).
   */
  normalize: Normalize;
}

export const DEFAULT_IMAGE: ImageSpec = { height: 32, width: 128, channels: 3, normalize: "imagenet" };

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageDecodeError";
  }
}

/** Decodes encoded image bytes; throws ImageDecodeError with the reason. */
export async function decodeImage(bytes: Uint8Array): Promise<DecodedImage> {
  const { Image } = await loadCanvas();
  const img = new Image();
  try {
    img.src = bytes;
    await img.decode();
  } catch (e) {
    throw new ImageDecodeError(
      `undecodable image (${describeFormat(bytes)}, ${bytes.length} bytes): ${(e as Error).message}`,
    );
  }
  if (!(img.width > 0 && img.height > 0)) {
    throw new ImageDecodeError(`undecodable image (${describeFormat(bytes)}, ${bytes.length} bytes): zero size`);
  }
  return img;
}

export type ImageFormat = "jpeg" | "png" | "gif" | "bmp" | "webp" | "unknown";

/** Format and size from the header, without decoding (for stats and listings). */
export function probeImage(bytes: Uint8Array): { format: ImageFormat; width?: number; height?: number } {
  const b = bytes;
  const be16 = (i: number) => (b[i] << 8) | b[i + 1];
  const be32 = (i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  const le16 = (i: number) => b[i] | (b[i + 1] << 8);
  const le32 = (i: number) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return { format: "png", width: be32(16), height: be32(20) };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) {
        i++;
        continue;
      }
      const marker = b[i + 1];
      if (marker === 0xff) {
        i++;
        continue;
      }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        i += 2;
        continue;
      }
      const len = be16(i + 2);
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) return { format: "jpeg", height: be16(i + 5), width: be16(i + 7) };
      i += 2 + len;
    }
    return { format: "jpeg" };
  }
  if (b.length >= 10 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) {
    return { format: "gif", width: le16(6), height: le16(8) };
  }
  if (b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d) {
    return { format: "bmp", width: le32(18), height: Math.abs(le32(22) | 0) };
  }
  if (b.length >= 12 && b[0] === 0x52 && b[1] === 0x49 && b[8] === 0x57 && b[9] === 0x45) return { format: "webp" };
  return { format: "unknown" };
}

function describeFormat(bytes: Uint8Array): string {
  const f = probeImage(bytes).format;
  return f === "unknown" ? "unknown format" : f.toUpperCase();
}

const canvases = new Map<string, { canvas: Canvas; ctx: SKRSContext2D }>();

/** A reusable canvas of a given size (a few sizes, e.g. the model input, are cached). */
function canvasOf(width: number, height: number) {
  const key = `${width}x${height}`;
  let c = canvases.get(key);
  if (!c) {
    if (canvases.size >= 8) canvases.clear();
    const canvas: Canvas = canvasSync().createCanvas(width, height);
    c = { canvas, ctx: canvas.getContext("2d") };
    canvases.set(key, c);
  }
  return c;
}

let scratch: { canvas: Canvas; ctx: SKRSContext2D; width: number; height: number } | undefined;

/** A grow-only scratch canvas at least width×height, for one-off sizes. */
function scratchCanvas(width: number, height: number) {
  if (!scratch || scratch.width < width || scratch.height < height) {
    const w = Math.max(width, scratch?.width ?? 0, 256), h = Math.max(height, scratch?.height ?? 0, 64);
    const canvas: Canvas = canvasSync().createCanvas(w, h);
    scratch = { canvas, ctx: canvas.getContext("2d"), width: w, height: h };
  }
  return scratch;
}

/**
 * RGBA pixels of `img` drawn (stretched) into width×height over white.
 * `oneOff`: an arbitrary size (drawn in a shared scratch canvas instead of a cached one).
 */
export function drawRgba(img: DecodedImage, width: number, height: number, oneOff = false): Uint8ClampedArray {
  const { ctx } = oneOff ? scratchCanvas(width, height) : canvasOf(width, height);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "medium";
  ctx.drawImage(img, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height).data;
}

/** Mean colour of the image's border (from an 8×8 thumbnail), as a CSS colour. */
function edgeColour(img: DecodedImage): string {
  const { ctx } = canvasOf(8, 8);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, 8, 8);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "medium";
  ctx.drawImage(img, 0, 0, 8, 8);
  const d = ctx.getImageData(0, 0, 8, 8).data;
  let r = 0, g = 0, b = 0, n = 0;
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      if (y !== 0 && y !== 7 && x !== 0 && x !== 7) continue;
      const i = (y * 8 + x) * 4;
      r += d[i];
      g += d[i + 1];
      b += d[i + 2];
      n++;
    }
  }
  return `rgb(${Math.round(r / n)},${Math.round(g / n)},${Math.round(b / n)})`;
}

/**
 * RGBA pixels of `img` under an affine map into a width×height canvas
 * (`m` = [a, b, c, d, e, f]: x' = a·x + c·y + e, y' = b·x + d·y + f, from the
 * image's pixel coordinates). Where the image does not reach, the mean colour
 * of its border (a cheap stand-in for cv2.BORDER_REPLICATE).
 */
export function drawAffineRgba(
  img: DecodedImage,
  width: number,
  height: number,
  m: readonly [number, number, number, number, number, number],
): Uint8ClampedArray {
  const fill = edgeColour(img);
  const { ctx } = canvasOf(width, height);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = fill;
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "medium";
  ctx.setTransform(m[0], m[1], m[2], m[3], m[4], m[5]);
  ctx.drawImage(img, 0, 0);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  return ctx.getImageData(0, 0, width, height).data;
}

/** Stretch-resizes to H×W: RGB floats in 0..255, HWC, into `out` (length H·W·3). */
export function resizeRgb(img: DecodedImage, height: number, width: number, out: Float32Array): Float32Array {
  const rgba = drawRgba(img, width, height);
  for (let p = 0, q = 0; p < width * height; p++, q += 4) {
    out[p * 3] = rgba[q];
    out[p * 3 + 1] = rgba[q + 1];
    out[p * 3 + 2] = rgba[q + 2];
  }
  return out;
}

/**
 * Writes an HWC RGB 0..255 image into `out` at `offset` with the spec's
 * channels and normalisation.
 */
export function normalizeInto(rgb: Float32Array, spec: ImageSpec, out: Float32Array, offset: number): void {
  normalizeFrom(rgb, 3, spec, out, offset);
}

/** Per-channel scale and offset: value · scale + offset = (value/255 − mean)/std. */
function affineOf(spec: ImageSpec): [number, number, number, number, number, number] {
  if (spec.normalize === "unit") return [1 / 255, 1 / 255, 1 / 255, 0, 0, 0];
  if (spec.normalize === "symmetric") return [2 / 255, 2 / 255, 2 / 255, -1, -1, -1];
  if (spec.channels === 1) {
    const mean = (IMAGENET_MEAN[0] + IMAGENET_MEAN[1] + IMAGENET_MEAN[2]) / 3;
    const std = (IMAGENET_STD[0] + IMAGENET_STD[1] + IMAGENET_STD[2]) / 3;
    return [1 / (255 * std), 0, 0, -mean / std, 0, 0];
  }
  const k = (c: number) => 1 / (255 * IMAGENET_STD[c]);
  const b = (c: number) => -IMAGENET_MEAN[c] / IMAGENET_STD[c];
  return [k(0), k(1), k(2), b(0), b(1), b(2)];
}

/**
 * Normalises HWC pixels with `stride` values per pixel (3: RGB floats,
 * 4: RGBA bytes) into `out` at `offset`, with the spec's channels.
 */
export function normalizeFrom(
  px: ArrayLike<number>,
  stride: 3 | 4,
  spec: ImageSpec,
  out: Float32Array,
  offset: number,
): void {
  const n = spec.height * spec.width;
  const [k0, k1, k2, b0, b1, b2] = affineOf(spec);
  if (spec.channels === 3) {
    for (let p = 0, i = 0, o = offset; p < n; p++, i += stride, o += 3) {
      const r = px[i], g = px[i + 1], b = px[i + 2];
      out[o] = (r < 0 ? 0 : r > 255 ? 255 : r) * k0 + b0;
      out[o + 1] = (g < 0 ? 0 : g > 255 ? 255 : g) * k1 + b1;
      out[o + 2] = (b < 0 ? 0 : b > 255 ? 255 : b) * k2 + b2;
    }
  } else {
    for (let p = 0, i = 0; p < n; p++, i += stride) {
      const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
      out[offset + p] = (y < 0 ? 0 : y > 255 ? 255 : y) * k0 + b0;
    }
  }
}

/** Stretch-resize and normalise in one go (no augmentation): canvas RGBA straight into `out`. */
export function resizeNormalizeInto(img: DecodedImage, spec: ImageSpec, out: Float32Array, offset: number): void {
  normalizeFrom(drawRgba(img, spec.width, spec.height), 4, spec, out, offset);
}

/** Inverse of `normalizeInto` for one image: RGBA bytes (for montages and debugging). */
export function denormalizeToRgba(
  images: Float32Array,
  spec: ImageSpec,
  index: number,
): Uint8ClampedArray {
  const n = spec.height * spec.width;
  const out = new Uint8ClampedArray(n * 4);
  const base = index * n * spec.channels;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      const ch = spec.channels === 3 ? c : 0;
      const v = images[base + p * spec.channels + ch];
      const mean = spec.normalize === "unit"
        ? 0
        : spec.normalize === "symmetric"
        ? 0.5
        : spec.channels === 3
        ? IMAGENET_MEAN[c]
        : 0.449;
      const std = spec.normalize === "unit"
        ? 1
        : spec.normalize === "symmetric"
        ? 0.5
        : spec.channels === 3
        ? IMAGENET_STD[c]
        : 0.226;
      out[p * 4 + c] = Math.round((v * std + mean) * 255);
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}
