/**
 * `deno task read -- --checkpoint PATH [--family NAME [--select PREFIX]] [--backend NAME] [--batch-size N]
 *   [--decode-ar true|false] [--refine-iters N] [--rotation DEG] [--attention DIR] IMAGES…`
 *
 * Recognises the text in images with a strata checkpoint and prints one line per image:
 * `file: text (confidence)`, confidence with 4 decimals (`<0.0001` below that). IMAGES are files, folders (their
 * image files, sorted) or globs (`*`, `?`, `[…]` in the last path segment). PATH is a `.safetensors` checkpoint or a train stage's
 * model folder (then its best.safetensors). An image that cannot be read (missing, empty, undecodable) is named on
 * stderr and left out; the others are still recognised, and the exit status is then 1.
 * With `--family`, PATH may be published PyTorch weights (`.pth`, `.pt`, Lightning `.ckpt`, safetensors) that the
 * family's key map reads (checkpoints/README.md).
 * `--attention DIR` also writes one PNG per image into DIR: the image with the position-attention map of each
 * decoded character overlaid, a row per character (cli/attention_png.ts).
 */
import { basename, dirname, join } from "node:path";

const IMAGE_EXT = /\.(jpe?g|png|bmp|gif|webp)$/i;

const USAGE = `usage: deno task read -- --checkpoint PATH [--family NAME [--select PREFIX]] [--backend NAME]
                       [--batch-size N] [--decode-ar B] [--refine-iters N] [--rotation DEG] [--attention DIR] IMAGES…

Recognises text in images and prints \`file: text (confidence)\` per image.
  --checkpoint PATH   a .safetensors checkpoint, or a train output folder (uses best.safetensors)
  --family NAME       PATH is published PyTorch weights (.pth/.pt/.ckpt/safetensors) of this model family
                      (abinet_vision, conclr_vision, …)
  --select PREFIX     with --family: only the keys under PREFIX, e.g. vision. of a full ABINet checkpoint
  --backend NAME      force a backend (torch, torch-cpu, torch-cuda, tensorflow, wasm, webgpu, cpu)
  --batch-size N      images per forward pass (default 64)
  --decode-ar B       true: autoregressive, false: one parallel pass (parseq; default: the model's)
  --refine-iters N    iterative refinement passes (parseq; default: the model's)
  --rotation DEG      rotate the images 0, 90, 180 or 270 degrees counter-clockwise first
  --attention DIR     write DIR/<image>.png: the position attention of each decoded character, a row each
  IMAGES              image files, folders, or globs like 'demo/*.jpg'

Images that cannot be read are named on stderr and left out; the exit status is then 1.`;

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Expands files, folders and globs into a list of image paths (folders and globs sorted). */
export async function expandImages(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    if (/[*?[]/.test(basename(arg))) {
      const dir = dirname(arg);
      const re = globToRegExp(basename(arg));
      const found: string[] = [];
      for await (const e of Deno.readDir(dir)) if (e.isFile && re.test(e.name)) found.push(join(dir, e.name));
      if (found.length === 0) throw new Error(`${arg}: no file matches`);
      out.push(...found.sort());
    } else if (await isDir(arg)) {
      const found: string[] = [];
      for await (const e of Deno.readDir(arg)) if (e.isFile && IMAGE_EXT.test(e.name)) found.push(join(arg, e.name));
      out.push(...found.sort());
    } else {
      // A missing file is named when it is read, with the others' results (see main).
      out.push(arg);
    }
  }
  return out;
}

export async function main(args: string[], print: (line: string) => void = console.log): Promise<number> {
  let checkpoint: string | undefined;
  let backend: string | undefined;
  let family: string | undefined;
  let select: string | undefined;
  let batchSize = 64;
  let decodeAr: boolean | undefined;
  let refineIters: number | undefined;
  let rotation = 0;
  let attentionDir: string | undefined;
  const inputs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    try {
      if (a === "--help" || a === "-h") {
        console.error(USAGE);
        return 0;
      } else if (a === "--checkpoint") checkpoint = value();
      else if (a.startsWith("--checkpoint=")) checkpoint = a.slice(13);
      else if (a === "--family") family = value();
      else if (a === "--select") select = value();
      else if (a.startsWith("--family=")) family = a.slice(9);
      else if (a === "--backend") backend = value();
      else if (a.startsWith("--backend=")) backend = a.slice(10);
      else if (a === "--batch-size") batchSize = Number(value());
      else if (a === "--decode-ar") {
        const v = value();
        if (v !== "true" && v !== "false") throw new Error(`--decode-ar takes true or false, got ${v}`);
        decodeAr = v === "true";
      } else if (a === "--refine-iters") {
        refineIters = Number(value());
        if (!(Number.isInteger(refineIters) && refineIters >= 0)) {
          throw new Error(`--refine-iters takes an integer ≥ 0`);
        }
      } else if (a === "--rotation") {
        rotation = Number(value());
        if (![0, 90, 180, 270].includes(rotation)) throw new Error(`--rotation takes 0, 90, 180 or 270`);
      } else if (a === "--attention") attentionDir = value();
      else if (a.startsWith("--attention=")) attentionDir = a.slice(12);
      else if (a === "--") continue;
      else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
      else inputs.push(a);
    } catch (e) {
      console.error(`read: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
  }
  if (!checkpoint || inputs.length === 0 || !(Number.isInteger(batchSize) && batchSize >= 1)) {
    console.error(USAGE);
    return 2;
  }
  if (attentionDir && rotation) {
    // The overlay is drawn on the image as read; the maps would be of the rotated one.
    console.error(`read: --attention cannot be combined with --rotation\n\n${USAGE}`);
    return 2;
  }
  try {
    const files = await expandImages(inputs);
    if (files.length === 0) throw new Error(`no images in ${inputs.join(", ")}`);
    const path = (await isDir(checkpoint)) ? join(checkpoint, "best.safetensors") : checkpoint;
    const tf = await import("@tensorflow/tfjs");
    const { prepareBackend } = await import("../training/backend.ts");
    const { loadRecognizer } = await import("../training/checkpoint.ts");
    const { predictOptions } = await import("../training/predict.ts");
    const { rotateImages } = await import("../training/evaluation.ts");
    const { decodeLogits } = await import("../models/decode.ts");
    const { attentionPng, formatConfidence } = await import("./attention_png.ts");
    const { charsetFor } = await import("../data/charset.ts");
    const { decodeImage, normalizeInto, resizeRgb } = await import("../data/image.ts");
    await prepareBackend(backend);
    const { model, meta } = family
      ? await (await import("../checkpoints/mod.ts")).loadOfficial(path, family, { select })
      : await loadRecognizer(path).catch(async (e) => {
        const { isStrataCheckpoint } = await import("../checkpoints/mod.ts");
        if (await isStrataCheckpoint(path)) throw e;
        throw new Error(`${path} is not a strata checkpoint; for published PyTorch weights give --family NAME`);
      });
    try {
      const decoding = predictOptions(model, { decode_ar: decodeAr, refine_iters: refineIters }, "read");
      const d = meta.data;
      const spec = {
        height: d.height,
        width: d.width,
        channels: d.channels as 1 | 3,
        normalize: d.normalize as "imagenet" | "unit" | "symmetric",
      };
      const charset = charsetFor(d.protocol as 36 | 62 | 94);
      const per = d.height * d.width * d.channels;
      const rgb = new Float32Array(d.height * d.width * 3);
      // An unreadable image is named and left out; the others in its batch are still recognised.
      const failed: string[] = [];
      if (attentionDir) await Deno.mkdir(attentionDir, { recursive: true });
      const pngNames = new Set<string>();
      for (let start = 0; start < files.length; start += batchSize) {
        const chunk = files.slice(start, start + batchSize);
        const images = new Float32Array(chunk.length * per);
        const good: string[] = [];
        const decoded = [];
        for (const file of chunk) {
          try {
            const img = await decodeImage(await Deno.readFile(file));
            normalizeInto(resizeRgb(img, d.height, d.width, rgb), spec, images, good.length * per);
            good.push(file);
            if (attentionDir) decoded.push(img);
          } catch (e) {
            const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message.split("\n")[0];
            failed.push(file);
            console.error(`read: ${file}: cannot read: ${why}`);
          }
        }
        if (good.length === 0) continue;
        const raw = tf.tensor4d(images.subarray(0, good.length * per), [good.length, d.height, d.width, d.channels]);
        const x = rotation ? rotateImages(raw, rotation as 90 | 180 | 270) : raw;
        const out = model.predict(x, attentionDir ? { ...decoding, attention: true } : decoding);
        try {
          const rec = decodeLogits(await out.logits.data(), out.logits.shape, charset);
          for (const [k, r] of rec.entries()) print(`${good[k]}: ${r.text} (${formatConfidence(r.confidence)})`);
          if (attentionDir) {
            if (!out.attention) throw new Error(`model family ${meta.model_family} gives no position attention`);
            const [, positions, h, w] = out.attention.shape;
            const maps = await out.attention.data() as Float32Array;
            for (const [k, r] of rec.entries()) {
              const rows = r.probs.map((p, t) => ({
                label: t < r.indices.length ? charset.decode([r.indices[t]]) : "</s>",
                probability: p,
                map: maps.slice((k * positions + t) * h * w, (k * positions + t + 1) * h * w),
              }));
              const png = await attentionPng(decoded[k], rows, { height: d.height, width: d.width, h, w }, r.text);
              const stem = basename(good[k]).replace(/\.[^.]+$/, "");
              let name = `${stem}.png`;
              for (let n = 2; pngNames.has(name); n++) name = `${stem}_${n}.png`;
              pngNames.add(name);
              await Deno.writeFile(join(attentionDir, `${name}.tmp`), png);
              await Deno.rename(join(attentionDir, `${name}.tmp`), join(attentionDir, name));
            }
          }
        } finally {
          tf.dispose([raw, x]);
          out.logits.dispose();
          out.attention?.dispose();
        }
      }
      if (failed.length) {
        console.error(
          `read: ${files.length - failed.length} of ${files.length} images read; could not read ${failed.length}`,
        );
        return 1;
      }
    } finally {
      model.dispose();
    }
    return 0;
  } catch (e) {
    console.error(`read: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
