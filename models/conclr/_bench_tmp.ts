import * as tf from "@tensorflow/tfjs";
import { useWasm } from "../../backend/wasm.ts";
import "../mod.ts";
import "./mod.ts";
import { getModelFamily } from "../recognizer.ts";
await useWasm();
const B = Number(Deno.args[0] ?? 32);
const labels = new Int32Array(B * 26), lengths = new Int32Array(B);
for (let i = 0; i < B; i++) { const n = 3 + (i % 6); for (let j = 0; j < n; j++) labels[i * 26 + j] = 1 + ((i * 7 + j * 3) % 36); lengths[i] = n + 1; }
const imgs = new Float32Array(B * 32 * 128 * 3).map((_, i) => Math.sin(i * 0.37));
const batch = { images: imgs, shape: [B, 32, 128, 3] as [number, number, number, number], labels, lengths, texts: Array(B).fill("x"), indices: [] };
const images = tf.tensor4d(imgs, batch.shape);
for (const name of Deno.args.slice(1)) {
  const f = getModelFamily(name);
  const m = f.create(f.config.parse({ preset: "tiny" }, []), 1, 37);
  const opt = tf.train.adam(1e-4);
  const vars = [...m.weights.values()];
  const times: number[] = [];
  for (let step = 0; step < 4; step++) {
    const t0 = performance.now();
    let peak = 0; const c = opt.minimize(() => { const l = m.trainingLoss(batch, images, { step, random: Math.random }).loss; peak = tf.memory().numBytes; return l; }, true, vars)!; if (step === 0) console.log(`forward live MB ${(peak / 2 ** 20).toFixed(0)}`);
    c.dataSync(); c.dispose();
    times.push(performance.now() - t0);
  }
  const avg = times.slice(1).reduce((a, b) => a + b, 0) / 3;
  console.log(`${name} B=${B}: ${times.map((t) => t.toFixed(0)).join(", ")} ms; mean of last 3 ${avg.toFixed(0)} ms`);
  opt.dispose(); m.dispose();
}
