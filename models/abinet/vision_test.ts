import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import { assertClose, loadFixture, nchwToNhwc, skipUnlessFixture } from "../../testing/fixtures.ts";
import { decodeLogits } from "../decode.ts";
import "../mod.ts";
import { getModelFamily } from "../recognizer.ts";
import { AbinetVisionModel } from "./mod.ts";
import { TEST_MICRO_CONFIG } from "./test_config.ts";

const FILE = "abinet_vision/base_vision.json";
const create = (config: Record<string, unknown>, seed = 1, numClasses = 37) => {
  const family = getModelFamily("abinet_vision");
  return family.create(family.config.parse(config, []), seed, numClasses) as AbinetVisionModel;
};

Deno.test({ name: "parity: base_vision (fxgen params), full config", ignore: skipUnlessFixture(FILE) }, async () => {
  await useWasm();
  const fx = await loadFixture(FILE);
  const model = create({});
  assert.equal(model.parameterCount(), fx.json.params!.num_parameters, "parameter count vs the official model");
  const params = await fx.params();
  // The model's state_dict names are exactly the official ones (minus num_batches_tracked).
  assert.deepEqual([...model.state().keys()].sort(), [...params.keys()].sort());
  model.loadState(params, { source: FILE });
  const img = nchwToNhwc(fx.inputs.get("images")!);
  const images = tf.tensor4d(img.data as Float32Array, [2, 32, 128, 3]);
  const nchw = (t: tf.Tensor4D) => tf.transpose(t, [0, 3, 1, 2]);
  const out = tf.tidy(() => {
    const o = model.forward(images);
    return {
      logits: o.logits,
      backbone_features: nchw(o.backboneFeatures),
      resnet_features: nchw(o.resnetFeatures),
      attn_vecs: o.attnVecs,
      attn_scores: o.attnScores,
    };
  });
  const { atol, rtol } = fx.json.tolerance.recommended;
  const report: string[] = [];
  for (const [name, t] of Object.entries(out)) {
    const d = assertClose(name, t.dataSync(), fx.expected.get(name)!.data, atol, rtol);
    report.push(`${name} ${d.maxAbs.toExponential(2)}`);
  }
  console.log(`base_vision max |diff|: ${report.join(", ")}`);
  const decoded = decodeLogits(out.logits.dataSync(), out.logits.shape);
  assert.deepEqual(decoded.map((d) => d.ptLength), [...fx.expected.get("pt_lengths")!.data]);
  const argmax = tf.tidy(() => tf.argMax(out.logits, -1).dataSync());
  assert.deepEqual([...argmax], [...fx.expected.get("argmax")!.data]);
  // predict() is the eval forward's logits.
  const { logits } = model.predict(images);
  assert.deepEqual(logits.dataSync(), out.logits.dataSync());
  tf.dispose([images, logits, ...Object.values(out)]);
  model.dispose();
});

Deno.test("abinet_vision: presets, config errors, state round trip", async () => {
  await useWasm();
  const family = getModelFamily("abinet_vision");
  const tiny = create({ preset: "tiny" }, 7);
  assert.equal(tiny.config.d_model, 128);
  assert.equal(tiny.positions, 26);
  assert.throws(() => family.config.parse({ stage_chanels: [1] }, []), /no such key/);
  assert.throws(() => create({ d_model: 256 }), /d_model 256 must equal the last stage width 512/);
  // Another seed, then load the first model's state: same predictions.
  const other = create({ preset: "tiny" }, 8);
  const images = tf.randomUniform([2, 32, 128, 3], -1, 1, "float32", 5) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  tiny.predict(images).logits.dispose();
  assert.equal(tf.memory().numTensors, before, "predict leaks no tensor");
  const a = tiny.predict(images).logits, b0 = other.predict(images).logits;
  assert.deepEqual(a.shape, [2, 26, 37]);
  assert.notDeepEqual(a.dataSync(), b0.dataSync());
  other.loadState(tiny.state());
  const b = other.predict(images).logits;
  assertClose("reloaded", b.dataSync(), a.dataSync(), 0);
  assert.throws(() => other.predict(tf.zeros([1, 32, 100, 3]) as tf.Tensor4D), /32×100×3/);
  tf.dispose([images, a, b0, b]);
  tiny.dispose();
  other.dispose();
});

const MICRO = TEST_MICRO_CONFIG;

function microBatch() {
  const b = 4, t = 6;
  const labels = new Int32Array(b * t);
  const words = [[1, 2], [3], [4, 5, 6], [2, 2, 1, 7]];
  words.forEach((w, i) => labels.set(w, i * t));
  const lengths = Int32Array.from(words, (w) => w.length + 1);
  const images = new Float32Array(b * 16 * 32 * 3);
  for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 0.37) * Math.cos(i * 0.011);
  return { images, shape: [b, 16, 32, 3] as [number, number, number, number], labels, lengths, texts: [], indices: [] };
}

function descends(backend: string) {
  const model = create(MICRO, 3, 8);
  const batch = microBatch();
  const images = tf.tensor4d(batch.images, batch.shape);
  const opt = tf.train.adam(1e-2);
  const vars = [...model.weights.values()];
  const losses: number[] = [];
  const rm = model.buffers.get("backbone.resnet.bn1.running_mean")!.dataSync().slice();
  let tensors = 0;
  for (let step = 0; step < 8; step++) {
    const cost = opt.minimize(() => model.trainingLoss(batch, images, { step, random: Math.random }).loss, true, vars);
    losses.push(cost!.dataSync()[0]);
    cost!.dispose();
    if (step === 1) tensors = tf.memory().numTensors;
  }
  assert.equal(tf.memory().numTensors, tensors, "no tensor leak across steps");
  assert.notDeepEqual(model.buffers.get("backbone.resnet.bn1.running_mean")!.dataSync(), rm, "BN running stats update");
  console.log(`${backend}: loss ${losses.map((l) => l.toFixed(3)).join(" → ")}`);
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses[7] < losses[0] * 0.85, `loss should fall: ${losses}`);
  // Same step → same dropout masks → same loss (train mode with batch-statistics BN).
  const again = () =>
    tf.tidy(() => model.trainingLoss(batch, images, { step: 3, random: Math.random }).loss.dataSync()[0]);
  assert.equal(again(), again());
  tf.dispose(images);
  opt.dispose();
  model.dispose();
}

Deno.test("abinet_vision: loss falls over a few Adam steps (cpu)", async () => {
  await tf.setBackend("cpu");
  descends("cpu");
});

Deno.test("abinet_vision: loss falls over a few Adam steps (wasm)", async () => {
  await useWasm();
  if (!tf.getKernel("Conv2DBackpropFilter", "wasm")) {
    console.log("note: wasm lacks Conv2DBackpropFilter (backend/ kernels not registered); wasm gradient test skipped");
    return;
  }
  descends("wasm");
});
