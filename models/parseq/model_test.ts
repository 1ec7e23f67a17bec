/**
 * Model-level parity with strhub's PARSeq (fixtures README §3.6): encoder memory, the decoder cases, full
 * inference (AR + 1 refinement, NAR + 2) and the PLM loss with its per-permutation breakdown and the gradients
 * of all 55 parameters. Runs on tfjs wasm (strata's training backend). Figures go to the console.
 */
import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import { EVAL } from "../nn/layers.ts";
import { close, fixtureModel, json, replay, skipUnless, type Tensor, tensor } from "./test_fixtures.ts";
import { generatePermutations } from "./permutations.ts";
import { Tokenizer } from "./tokenizer.ts";
import { ParseqModel } from "./mod.ts";
import { resolveConfig } from "./config.ts";

const nhwc = (t: Tensor) =>
  tf.transpose(tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]), [
    0,
    2,
    3,
    1,
  ]) as tf.Tensor4D;
const boolMask = (spec: { data: number[] } | null) => (spec ? Uint8Array.from(spec.data) : undefined);

Deno.test({
  name: "parity: parameter names, shapes and counts (dec_depth 1 and 2)",
  ignore: skipUnless("encoder.json"),
}, async () => {
  await useWasm();
  const fx = await json("encoder.json");
  const m1 = await fixtureModel(1);
  assertEquals([...m1.state().keys()], fx.params.manifest.map((e: { name: string }) => e.name));
  assertEquals(m1.parameterCount(), 188_069);
  assertEquals(m1.weights.size, 55);
  m1.dispose();
  const m2 = await fixtureModel(2);
  assertEquals(m2.parameterCount(), 254_949);
  m2.dispose();
});

Deno.test({ name: "parity: encoder memory and intermediates", ignore: skipUnless("encoder.json") }, async () => {
  await useWasm();
  const fx = await json("encoder.json");
  const model = await fixtureModel();
  const images = await tensor(fx.inputs.images);
  const traced = new Map<string, Float32Array>();
  const memory = tf.tidy(() =>
    model.net.encode(nhwc(images), EVAL, (name, t) => traced.set(name, t.dataSync() as Float32Array))
  );
  const { atol, rtol } = fx.tolerance.recommended;
  const out: string[] = [];
  for (const key of ["pos_embedded", "block0_out", "block1_out"]) {
    out.push(
      `${key} ${close(key, traced.get(key)!, (await tensor(fx.expected[key])).data, atol, rtol).toExponential(2)}`,
    );
  }
  const d = close("memory", memory.dataSync(), (await tensor(fx.expected.memory)).data, atol, rtol);
  console.log(`parseq encoder: memory max |diff| ${d.toExponential(2)}; ${out.join(", ")}`);
  memory.dispose();
  model.dispose();
});

Deno.test({
  name: "parity: decoder cases (AR steps, permutations, cloze refinement, NAR; dec_depth 1 and 2)",
  ignore: skipUnless("decoder.json"),
}, async () => {
  await useWasm();
  const fx = await json("decoder.json");
  const models = { 1: await fixtureModel(1), 2: await fixtureModel(2) };
  const { atol, rtol } = fx.tolerance.recommended;
  const lines: string[] = [];
  for (const c of fx.cases) {
    const model = models[c.dec_depth as 1 | 2];
    const i = c.inputs;
    const memoryT = await tensor(i.memory);
    const tgt = await tensor(i.tgt_in);
    const [b, l] = tgt.shape;
    const traced = new Map<string, Float32Array>();
    const [dec, logits] = tf.tidy(() => {
      const memory = tf.tensor3d(memoryT.data as Float32Array, memoryT.shape as [number, number, number]);
      const slice = i.tgt_query?.pos_queries_slice as [number, number] | undefined;
      const out = model.net.decode({ ids: tgt.data as Int32Array, batch: b, length: l }, memory, {
        contentMask: boolMask(i.tgt_mask),
        paddingMask: boolMask(i.tgt_padding_mask),
        queryMask: boolMask(i.tgt_query_mask),
        query: slice ? model.net.queries(b, slice[0], slice[1] - slice[0]) : undefined,
        trace: (name, t) => traced.set(name, t.dataSync() as Float32Array),
      });
      return [out, model.net.logits(out)];
    });
    const dOut = close(
      `${c.name} decoder_output`,
      dec.dataSync(),
      (await tensor(c.expected.decoder_output)).data,
      atol,
      rtol,
    );
    const dLog = close(`${c.name} logits`, logits.dataSync(), (await tensor(c.expected.logits)).data, atol, rtol);
    if (c.expected.query_self_attn_out) {
      close(
        `${c.name} self_attn`,
        traced.get("self_attn_out")!,
        (await tensor(c.expected.query_self_attn_out)).data,
        atol,
        rtol,
      );
      close(
        `${c.name} cross_attn`,
        traced.get("cross_attn_out")!,
        (await tensor(c.expected.query_cross_attn_out)).data,
        atol,
        rtol,
      );
    }
    lines.push(`${c.name} ${dOut.toExponential(1)}/${dLog.toExponential(1)}`);
    tf.dispose([dec, logits]);
  }
  console.log(`parseq decoder max |diff| (output/logits): ${lines.join(", ")}`);
  models[1].dispose();
  models[2].dispose();
});

Deno.test({
  name: "parity: inference AR + 1 refinement and NAR + 2 (logits, argmax, texts, confidence)",
  ignore: skipUnless("inference.json"),
}, async () => {
  await useWasm();
  const fx = await json("inference.json");
  const model = await fixtureModel();
  const images = nhwc(await tensor(fx.inputs.images));
  const tok = new Tokenizer("0123456789abcdefghijklmnopqrstuvwxyz");
  const { atol, rtol } = fx.tolerance.recommended;
  for (const c of fx.cases) {
    const stages: [string, number][] = [["logits", c.refine_iters]];
    for (let k = 0; k < c.refine_iters; k++) stages.push([`stage${k}_logits`, k]);
    const figures: string[] = [];
    for (const [key, iters] of stages) {
      const expected = await tensor(c.expected[key]);
      const logits = model.net.infer(images, { decodeAr: c.decode_ar, refineIters: iters });
      assertEquals(logits.shape, expected.shape, `${c.name} ${key}`);
      figures.push(
        `${key} ${close(`${c.name} ${key}`, logits.dataSync(), expected.data, atol, rtol).toExponential(2)}`,
      );
      const argKey = key === "logits" ? "argmax" : key.replace("_logits", "_argmax");
      if (c.expected[argKey]) {
        const arg = tf.tidy(() => tf.argMax(logits, -1));
        assertEquals(Array.from(arg.dataSync()), c.expected[argKey].data, `${c.name} ${argKey}`);
        arg.dispose();
      }
      if (key === "logits") {
        const probs = tf.tidy(() => tf.softmax(logits, -1));
        const decoded = tok.decode(probs.dataSync(), probs.shape);
        assertEquals(decoded.map((d) => d.text), c.expected.decoded_texts);
        decoded.forEach((d, i) => {
          const want = c.expected.decoded_confidence[i];
          ok(Math.abs(d.confidence - want) <= 1e-4 * want, `${c.name} confidence ${i}: ${d.confidence} vs ${want}`);
        });
        probs.dispose();
        // The family's predict (strata's ids are PARSeq's ids) gives the same logits.
        const { logits: viaPredict } = model.predict(images, { decodeAr: c.decode_ar, refineIters: iters });
        assertEquals(Array.from(viaPredict.dataSync()), Array.from(logits.dataSync()));
        viaPredict.dispose();
      }
      logits.dispose();
    }
    console.log(`parseq inference ${c.name}: ${figures.join(", ")}; texts ${JSON.stringify(c.expected.decoded_texts)}`);
  }
  // AR without refinement stops after step 22: predict pads to 26 positions and decodes the same texts.
  const { logits } = model.predict(images, { decodeAr: true, refineIters: 0 });
  assertEquals(logits.shape, [2, 26, 37]);
  logits.dispose();
  images.dispose();
  model.dispose();
});

Deno.test({
  name: "parity: PLM training loss, per-permutation CE and gradients of all 55 parameters",
  ignore: skipUnless("train_loss.json"),
}, async () => {
  await useWasm();
  const fx = await json("train_loss.json");
  const model = await fixtureModel();
  const images = nhwc(await tensor(fx.inputs.images));
  const tok = new Tokenizer("0123456789abcdefghijklmnopqrstuvwxyz");
  const tol = fx.tolerance.recommended;
  for (const c of fx.cases) {
    const tgt = tok.encode(c.labels);
    assertEquals(Array.from(tgt.ids), c.tgt.data);
    const perms = generatePermutations(
      tgt.length - 2,
      { permNum: 6, permForward: true, permMirrored: true },
      replay(c.random_draws),
    );
    assertEquals(perms.flat(), c.expected_perms.data);
    const names = [...model.weights.keys()];
    let perPerm: { ce: number; n: number }[] = [];
    let permLogits: Float32Array | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const r = model.net.plmLoss(images, tgt, perms, EVAL, true);
      perPerm = r.perPermutation.map((p) => ({ ce: p.ce.dataSync()[0], n: p.n }));
      permLogits = r.logits!.dataSync() as Float32Array;
      return r.loss;
    }, names.map((n) => model.weights.get(n)!));
    const loss = value.dataSync()[0];
    const lossDiff = Math.abs(loss - c.expected.loss);
    ok(
      lossDiff <= tol.loss.atol + tol.loss.rtol * Math.abs(c.expected.loss),
      `${c.name} loss ${loss} vs ${c.expected.loss}`,
    );
    const [k, b, l, cl] = [perms.length, 2, tgt.length - 1, 37];
    c.per_permutation.forEach((p: { n: number; cross_entropy: number; perm: number[] }, i: number) => {
      assertEquals(perPerm[i].n, p.n, `${c.name} perm ${i} n`);
      ok(Math.abs(perPerm[i].ce - p.cross_entropy) <= 1e-5 + 1e-5 * p.cross_entropy, `${c.name} perm ${i} CE`);
    });
    let worstLogit = 0;
    for (let i = 0; i < k; i++) {
      const want = await tensor(c.per_permutation[i].logits);
      worstLogit = Math.max(
        worstLogit,
        close(
          `${c.name} perm ${i} logits`,
          permLogits!.subarray(i * b * l * cl, (i + 1) * b * l * cl),
          want.data,
          1e-5,
          1e-4,
        ),
      );
    }
    let worstGrad = 0, worstName = "";
    for (const name of names) {
      const spec = c.expected.grads[name];
      ok(spec, `${c.name}: no expected gradient for ${name}`);
      // Our variables hold tfjs layouts; compare in PyTorch layout.
      const entry = model.store.entries.get(name)!;
      const g = grads[entry.variable.name];
      const torchLayout = entry.layout === "linear"
        ? tf.transpose(g)
        : entry.layout === "conv"
        ? tf.transpose(g, [3, 2, 0, 1])
        : g;
      const d = close(
        `${c.name} grad ${name}`,
        torchLayout.dataSync(),
        (await tensor(spec)).data,
        tol.grads.atol,
        tol.grads.rtol,
      );
      if (d > worstGrad) [worstGrad, worstName] = [d, name];
      if (torchLayout !== g) torchLayout.dispose();
    }
    assertEquals(Object.keys(c.expected.grads).length, 55);
    console.log(
      `parseq PLM ${c.name}: loss ${loss.toFixed(7)} (ref ${c.expected.loss.toFixed(7)}, |diff| ${
        lossDiff.toExponential(2)
      }); ` +
        `CE per perm ${perPerm.map((p) => p.ce.toFixed(5)).join(" ")}; logits max |diff| ${
          worstLogit.toExponential(2)
        }; ` +
        `grads: 55 tensors, worst max |diff| ${worstGrad.toExponential(2)} (${worstName})`,
    );
    value.dispose();
    tf.dispose(Object.values(grads));
  }
  images.dispose();
  model.dispose();
});

Deno.test("parseq: presets' parameter counts (small = strhub's PARSeq-S, 23.8 M with 94 characters)", async () => {
  await useWasm();
  const counts: Record<string, number> = {};
  for (const preset of ["micro", "tiny", "small"] as const) {
    const m = new ParseqModel(resolveConfig({ preset }), 1, 95);
    counts[preset] = m.parameterCount();
    m.dispose();
  }
  console.log(`parseq parameters (95 classes): ${JSON.stringify(counts)}`);
  assertEquals(counts.small, 23_832_671);
  ok(counts.tiny > 5.9e6 && counts.tiny < 6.2e6, `tiny ${counts.tiny}`);
  ok(counts.micro < 0.25e6, `micro ${counts.micro}`);
});

Deno.test("parseq: Adam steps on one batch lower the PLM loss; steps and predict leak no tensors", async () => {
  await useWasm();
  const { makeTrainStep } = await import("../../training/loop.ts");
  const { Adam } = await import("../../training/adam.ts");
  const { charsetFor } = await import("../../data/charset.ts");
  const model = new ParseqModel(
    resolveConfig({ preset: "micro", embed_dim: 32, image_height: 16, image_width: 64 }),
    3,
    37,
  );
  const optimizer = new Adam(model.weights);
  const cs = charsetFor(36);
  const texts = ["street", "ab", "parseq", "x9"];
  const labels = new Int32Array(4 * 26);
  texts.forEach((t, i) => labels.set(cs.encode(t), i * 26));
  let s = 1;
  const images = Float32Array.from(
    { length: 4 * 16 * 64 * 3 },
    () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1,
  );
  const batch = {
    images,
    shape: [4, 16, 64, 3] as [number, number, number, number],
    labels,
    lengths: Int32Array.from(texts, (t) => t.length + 1),
    texts,
    indices: [1, 2, 3, 4],
  };
  const step = makeTrainStep(model, optimizer, 20, 1);
  const losses: number[] = [];
  const before = tf.memory().numTensors;
  for (let i = 0; i < 30; i++) losses.push((await step(batch, i, 3e-3)).loss);
  assertEquals(tf.memory().numTensors, before);
  console.log(`parseq PLM loss on one batch: ${losses[0].toFixed(3)} → ${losses[29].toFixed(3)} after 30 Adam steps`);
  ok(losses[29] < 0.5 * losses[0], `loss ${losses[0]} → ${losses[29]}`);
  const x = tf.tensor4d(images, batch.shape);
  const n = tf.memory().numTensors;
  for (const decodeAr of [true, false]) model.predict(x, { decodeAr, refineIters: 2 }).logits.dispose();
  assertEquals(tf.memory().numTensors, n);
  x.dispose();
  optimizer.dispose();
  model.dispose();
});
