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

export type Normalize = "imagenet" | "unit";

export interface ImageSpec {
  height: number;
  width: number;
  /** 3 = RGB, 1 = luminance. */
  channels: 1 | 3;
  /** `imagenet`: (x/255 − mean)/std with ImageNet's mean and std (luminance: their averages); `unit`: x/255. */
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
    throw new ImageDecodeError(`undecodable image (${describeFormat(bytes)}, ${bytes.length} bytes): ${(e as Error).message}`);
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

/** A reusable canvas of a given size (a handful of sizes are cached). */
function canvasOf(width: number, height: number) {
  const key = `${width}x${height}`;
  let c = canvases.get(key);
  if (!c) {
    if (canvases.size > 64) canvases.clear();
    const canvas: Canvas = canvasSync().createCanvas(width, height);
    c = { canvas, ctx: canvas.getContext("2d") };
    canvases.set(key, c);
  }
  return c;
}

/** RGBA pixels of `img` drawn (stretched) into width×height over white. */
export function drawRgba(img: DecodedImage, width: number, height: number): Uint8ClampedArray {
  const { ctx } = canvasOf(width, height);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "medium";
  ctx.drawImage(img, 0, 0, width, height);
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
  const n = spec.height * spec.width;
  if (spec.channels === 3) {
    if (spec.normalize === "unit") {
      for (let i = 0; i < n * 3; i++) out[offset + i] = clamp255(rgb[i]) / 255;
    } else {
      for (let p = 0; p < n; p++) {
        for (let c = 0; c < 3; c++) {
          out[offset + p * 3 + c] = (clamp255(rgb[p * 3 + c]) / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
      }
    }
  } else {
    const mean = spec.normalize === "unit" ? 0 : (IMAGENET_MEAN[0] + IMAGENET_MEAN[1] + IMAGENET_MEAN[2]) / 3;
    const std = spec.normalize === "unit" ? 1 : (IMAGENET_STD[0] + IMAGENET_STD[1] + IMAGENET_STD[2]) / 3;
    for (let p = 0; p < n; p++) {
      const y = 0.299 * clamp255(rgb[p * 3]) + 0.587 * clamp255(rgb[p * 3 + 1]) + 0.114 * clamp255(rgb[p * 3 + 2]);
      out[offset + p] = (y / 255 - mean) / std;
    }
  }
}

function clamp255(x: number): number {
  return x < 0 ? 0 : x > 255 ? 255 : x;
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
      const mean = spec.normalize === "unit" ? 0 : spec.channels === 3 ? IMAGENET_MEAN[c] : 0.449;
      const std = spec.normalize === "unit" ? 1 : spec.channels === 3 ? IMAGENET_STD[c] : 0.226;
      out[p * 4 + c] = Math.round((v * std + mean) * 255);
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}
