/**
 * `deno task export -- --checkpoint PATH [--family NAME [--select PREFIX]] OUT.pth`
 *
 * Writes a model's state dict as a `torch.save` zip file that `torch.load` reads: PyTorch names and layouts
 * (what strata checkpoints hold), float32, in the model's order. PATH is a strata checkpoint (or a train /
 * weights model folder: its best.safetensors); with `--family`, published weights read by the family's key map
 * (so a Lightning `.ckpt` or a legacy `.pth` comes out as a plain state dict under strata's names).
 */
import { join } from "node:path";

const USAGE = `usage: deno task export -- --checkpoint PATH [--family NAME [--select PREFIX]] OUT.pth

Writes the model's state dict (PyTorch names and layouts) as a torch.save zip file.
  --checkpoint PATH   a strata .safetensors checkpoint, or a train/weights model folder (uses best.safetensors)
  --family NAME       PATH is published PyTorch weights of this family (read through its key map)
  --select PREFIX     with --family: only the keys under PREFIX (e.g. vision.)`;

export async function main(args: string[]): Promise<number> {
  let checkpoint: string | undefined, family: string | undefined, select: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => args[++i] ?? "";
    if (a === "--help" || a === "-h") {
      console.error(USAGE);
      return 0;
    } else if (a === "--checkpoint") checkpoint = value();
    else if (a === "--family") family = value();
    else if (a === "--select") select = value();
    else if (a === "--") continue;
    else if (a.startsWith("--")) {
      console.error(`export: unknown option ${a}\n\n${USAGE}`);
      return 2;
    } else rest.push(a);
  }
  if (!checkpoint || rest.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  try {
    const tf = await import("@tensorflow/tfjs");
    await tf.setBackend("cpu"); // transposes and copies only
    const path = (await Deno.stat(checkpoint)).isDirectory ? join(checkpoint, "best.safetensors") : checkpoint;
    const { model } = family
      ? await (await import("../checkpoints/mod.ts")).loadOfficial(path, family, { select })
      : await (await import("../training/checkpoint.ts")).loadRecognizer(path);
    try {
      if (!model.state) throw new Error(`model family ${model.family} has no state(): nothing to export`);
      const { writeTorchZip } = await import("../checkpoints/torch_writer.ts");
      const state = model.state();
      await writeTorchZip(rest[0], state);
      console.log(`${rest[0]}: ${state.size} tensors (${model.family}), torch.save zip`);
    } finally {
      model.dispose();
    }
    return 0;
  } catch (e) {
    console.error(`export: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
