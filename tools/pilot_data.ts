/**
 * Exports word images for the design pilots of the default experiment (tools/pilot_train.py): strata's own
 * synthetic renderer (the `synth` stage's defaults, vocabulary split train or test) and the real IIIT5K/SVT
 * training crops, each stretched to 32×128 RGB and stored as a JPEG (quality 80) in one blob file with a JSON
 * index, so that tens of thousands of samples travel in a few tens of MiB to a machine that has PyTorch but
 * neither Deno nor lmdb.
 *
 *   deno run -A tools/pilot_data.ts OUT_DIR --synth-train N --synth-test M [--real ../shared/data/real]
 *     [--synth '<JSON synth params, e.g. {"render":{"rotation":2}}>' --suffix clean]
 *
 * Never exports a test split of the real data: only `iiit5k_train` and `svt_train`.
 */
import { synthParams } from "../tasks/synth.ts";
import { synthGenerator } from "../data/synth_run.ts";
import { decodeImage, loadCanvas } from "../data/image.ts";

const H = 32, W = 128;

interface Entry {
  offset: number;
  length: number;
  label: string;
  kind: string;
}

async function main() {
  const args: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < Deno.args.length; i++) {
    const a = Deno.args[i];
    if (a.startsWith("--")) args[a.slice(2)] = Deno.args[++i];
    else positional.push(a);
  }
  const out = positional[0] ?? "";
  if (!out) throw new Error("usage: pilot_data.ts OUT_DIR --synth-train N --synth-test M [--real DIR]");
  await Deno.mkdir(out, { recursive: true });
  const { createCanvas } = await loadCanvas();
  const canvas = createCanvas(W, H);
  const ctx = canvas.getContext("2d");
  const encode = async (bytes: Uint8Array): Promise<Uint8Array> => {
    const img = await decodeImage(bytes);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, W, H);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "medium";
    ctx.drawImage(img, 0, 0, W, H);
    return new Uint8Array(canvas.encodeSync("jpeg", 80));
  };
  const writeSet = async (name: string, samples: AsyncIterable<{ bytes: Uint8Array; label: string; kind: string }>) => {
    const chunks: Uint8Array[] = [];
    const index: Entry[] = [];
    let offset = 0;
    const t0 = performance.now();
    for await (const s of samples) {
      const jpg = await encode(s.bytes);
      chunks.push(jpg);
      index.push({ offset, length: jpg.length, label: s.label, kind: s.kind });
      offset += jpg.length;
      if (index.length % 2000 === 0) {
        console.error(`${name}: ${index.length} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      }
    }
    const blob = new Uint8Array(offset);
    let o = 0;
    for (const c of chunks) {
      blob.set(c, o);
      o += c.length;
    }
    await Deno.writeFile(`${out}/${name}.bin.tmp`, blob);
    await Deno.rename(`${out}/${name}.bin.tmp`, `${out}/${name}.bin`);
    await Deno.writeTextFile(`${out}/${name}.json`, JSON.stringify(index));
    const secs = (performance.now() - t0) / 1000;
    console.error(`${name}: ${index.length} samples, ${(offset / 2 ** 20).toFixed(1)} MiB, ${secs.toFixed(0)} s`);
  };
  const synth = async function* (count: number, seed: number, split: "train" | "test") {
    const overrides = args.synth ? JSON.parse(args.synth) : {};
    const config = synthParams.parse({ ...overrides, count, seed, vocabulary: { split, test_fraction: 0.1 } }, []);
    const gen = await synthGenerator(config);
    for (let i = 0; i < count; i++) {
      const s = gen.sample(i);
      yield { bytes: s.bytes, label: s.label, kind: s.kind };
    }
  };
  const real = async function* (dir: string) {
    const names = [...Deno.readDirSync(`${dir}/IMG`)].map((e) => e.name).sort((a, b) => parseInt(a) - parseInt(b));
    for (const n of names) {
      const id = n.replace(/\.[^.]+$/, "");
      const label = (await Deno.readTextFile(`${dir}/label/${id}.txt`)).trim();
      yield { bytes: await Deno.readFile(`${dir}/IMG/${n}`), label, kind: "real" };
    }
  };
  const suffix = args.suffix ? `_${args.suffix}` : "";
  if (args["synth-train"]) await writeSet(`synth_train${suffix}`, synth(Number(args["synth-train"]), 1, "train"));
  if (args["synth-test"]) await writeSet(`synth_test${suffix}`, synth(Number(args["synth-test"]), 2, "test"));
  if (args.real) {
    await writeSet("iiit5k_train", real(`${args.real}/iiit5k_train`));
    await writeSet("svt_train", real(`${args.real}/svt_train`));
  }
}

if (import.meta.main) await main();
