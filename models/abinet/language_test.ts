import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import { assertClose, loadFixture, skipUnlessFixture } from "../../testing/fixtures.ts";
import { decodeLogits } from "../decode.ts";
import { EVAL } from "../nn/layers.ts";
import { ParamStore } from "../nn/params.ts";
import { loadStateDict, stateDict } from "../nn/state.ts";
import { BaseAlignment } from "./alignment.ts";
import {
  attentionMask,
  type BcnConfig,
  BCNLanguage,
  languageLengths,
  locationMask,
  MASKED,
  paddingMask,
  stopGradient,
} from "./language.ts";
import { lengthMask, smoothedTargets, softCrossEntropy } from "./loss.ts";

const BCN_FILE = "abinet_language/bcn.json";
const ALIGN_FILE = "abinet_alignment/base_alignment.json";

const FULL_BCN: BcnConfig = {
  dModel: 512,
  nhead: 8,
  ffn: 2048,
  numLayers: 4,
  dropout: 0.1,
  positions: 26,
  numClasses: 37,
  detach: true,
};

function bcn(config: BcnConfig, seed = 1): { store: ParamStore; model: BCNLanguage } {
  const store = new ParamStore(seed);
  return { store, model: new BCNLanguage(store.root(), config) };
}

Deno.test({ name: "parity: BCN language model (fxgen params)", ignore: skipUnlessFixture(BCN_FILE) }, async () => {
  await useWasm();
  const fx = await loadFixture(BCN_FILE);
  const { store, model } = bcn(FULL_BCN);
  assert.equal(store.parameterCount(), fx.json.params!.num_parameters, "BCN parameter count vs the official one");
  const params = await fx.params();
  assert.deepEqual([...stateDict(store).keys()], [...params.keys()], "state_dict names and order");
  loadStateDict(store, params, { source: BCN_FILE });
  const tokensIn = fx.inputs.get("tokens")!;
  const lengths = fx.inputs.get("lengths")!.data as Int32Array;
  const tokens = tf.tensor3d(tokensIn.data as Float32Array, [3, 26, 37]);
  const out = tf.tidy(() => ({ ...model.apply(tokens, lengths, EVAL) }));
  const { atol, rtol } = fx.json.tolerance.recommended;
  const fe = assertClose("feature", out.feature.dataSync(), fx.expected.get("feature")!.data, atol, rtol);
  const lo = assertClose("logits", out.logits.dataSync(), fx.expected.get("logits")!.data, atol, rtol);
  console.log(`BCN max |diff|: feature ${fe.maxAbs.toExponential(2)}, logits ${lo.maxAbs.toExponential(2)}`);
  const pt = decodeLogits(out.logits.dataSync(), out.logits.shape).map((d) => d.ptLength);
  assert.deepEqual(pt, [...fx.expected.get("pt_lengths")!.data]);
  tf.dispose([tokens, out.feature, out.logits]);
  model.dispose();
  store.dispose();
});

Deno.test({
  name: "gradient check: BCN language loss (fxgen params) vs central differences",
  ignore: skipUnlessFixture(BCN_FILE),
}, async () => {
  await useWasm();
  const fx = await loadFixture(BCN_FILE);
  const { store, model } = bcn(FULL_BCN);
  loadStateDict(store, await fx.params(), { source: BCN_FILE });
  const tokens = tf.tensor3d(fx.inputs.get("tokens")!.data as Float32Array, [3, 26, 37]);
  const lengths = fx.inputs.get("lengths")!.data as Int32Array;
  // Targets: a fixed pseudo-random word per sample; loss over t < length as in training.
  const labels = Int32Array.from({ length: 3 * 26 }, (_, i) => (i * 7 + 3) % 37);
  const targets = smoothedTargets(labels, 37, 0, Math.random);
  const loss = () => tf.tidy(() => softCrossEntropy(model.apply(tokens, lengths, EVAL).logits, targets, lengths));
  const names = [
    "proj.weight",
    "model.layers.0.multihead_attn.in_proj_weight",
    "model.layers.3.linear1.bias",
    "cls.weight",
  ];
  const vars = names.map((n) => store.weights.get(n)!);
  const { grads } = tf.variableGrads(loss, vars);
  const report: string[] = [];
  for (const [i, v] of vars.entries()) {
    const g = grads[v.name];
    // Direction: the gradient itself, unit norm (the best-conditioned direction for float32 differences: a
    // wrong scale or direction of g shows as analytic |g| ≠ numeric slope). Slope along d vs
    // (L(w+εd) − L(w−εd)) / 2ε.
    const d = tf.tidy(() => tf.div(g, tf.norm(g)));
    const analytic = tf.tidy(() => tf.sum(tf.mul(g, d)).dataSync()[0]);
    const original = tf.clone(v);
    const eps = 1e-2;
    v.assign(tf.tidy(() => tf.add(original, tf.mul(d, eps))));
    const up = tf.tidy(() => loss().dataSync()[0]);
    v.assign(tf.tidy(() => tf.sub(original, tf.mul(d, eps))));
    const down = tf.tidy(() => loss().dataSync()[0]);
    v.assign(original);
    const numeric = (up - down) / (2 * eps);
    const rel = Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), 1e-3);
    report.push(
      `${names[i]} ${analytic.toExponential(3)} vs ${numeric.toExponential(3)} (rel ${rel.toExponential(1)})`,
    );
    assert.ok(rel < 1e-2, `${names[i]}: analytic ${analytic} vs numeric ${numeric}`);
    tf.dispose([d, original]);
  }
  console.log(`BCN loss gradient: ${report.join("; ")}`);
  tf.dispose([tokens, ...Object.values(grads)]);
  model.dispose();
  store.dispose();
});

Deno.test({ name: "parity: BaseAlignment (stored params)", ignore: skipUnlessFixture(ALIGN_FILE) }, async () => {
  await useWasm();
  const fx = await loadFixture(ALIGN_FILE);
  const store = new ParamStore(1);
  const align = new BaseAlignment(store.root(), 512, 37);
  loadStateDict(store, await fx.params(), { source: ALIGN_FILE });
  const l = tf.tensor3d(fx.inputs.get("l_feature")!.data as Float32Array, [2, 26, 512]);
  const v = tf.tensor3d(fx.inputs.get("v_feature")!.data as Float32Array, [2, 26, 512]);
  const logits = tf.tidy(() => align.apply(l, v).logits);
  const { atol, rtol } = fx.json.tolerance.recommended;
  const d = assertClose("logits", logits.dataSync(), fx.expected.get("logits")!.data, atol, rtol);
  console.log(`alignment max |diff|: logits ${d.maxAbs.toExponential(2)}`);
  const pt = decodeLogits(logits.dataSync(), logits.shape).map((x) => x.ptLength);
  assert.deepEqual(pt, [...fx.expected.get("pt_lengths")!.data]);
  tf.dispose([l, v, logits]);
  store.dispose();
});

Deno.test("masks: location mask blocks only the diagonal, padding mask keys ≥ length", () => {
  assert.deepEqual([...locationMask(3)], [MASKED, 0, 0, 0, MASKED, 0, 0, 0, MASKED]);
  assert.deepEqual([...paddingMask([2, 3, 1], 3)], [0, 0, MASKED, 0, 0, 0, 0, MASKED, MASKED]);
  assert.deepEqual([...lengthMask(Int32Array.of(2, 0, 5), 3)], [1, 1, 0, 0, 0, 0, 1, 1, 1]);
  // [B·H, T, T] with B = 2 (lengths 2, 3), H = 2, T = 3: location + padding, repeated per head.
  const M = MASKED;
  const len2 = [M, 0, M, 0, M, M, 0, 0, M];
  const len3 = [M, 0, 0, 0, M, 0, 0, 0, M];
  assert.deepEqual([...attentionMask([2, 3], 3, 2)], [...len2, ...len2, ...len3, ...len3]);
});

const MICRO: BcnConfig = { ...FULL_BCN, dModel: 16, nhead: 2, ffn: 32, numLayers: 2, positions: 6, numClasses: 5 };

Deno.test("BCN: position t never sees its own token; keys ≥ length are ignored", async () => {
  await useWasm();
  const { store, model } = bcn(MICRO, 3);
  const base = tf.tidy(() => tf.softmax(tf.randomNormal([1, 6, 5], 0, 2, "float32", 11)) as tf.Tensor3D);
  const run = (tokens: tf.Tensor3D, len: number) => tf.tidy(() => model.apply(tokens, [len], EVAL).logits.dataSync());
  const row = (x: Float32Array | Int32Array | Uint8Array, t: number) => [...x.slice(t * 5, t * 5 + 5)];
  const ref = run(base, 6);
  // Change the token at position 2 only: output 2 is unchanged, the others change.
  const changed = tf.tidy(() => {
    const onehot = tf.oneHot(tf.tensor1d([0, 0, 4, 0, 0, 0], "int32"), 5);
    const sel = tf.reshape(tf.tensor1d([0, 0, 1, 0, 0, 0]), [1, 6, 1]);
    return tf.add(tf.mul(base, tf.sub(1, sel)), tf.mul(tf.cast(tf.reshape(onehot, [1, 6, 5]), "float32"), sel));
  }) as tf.Tensor3D;
  const after = run(changed, 6);
  assert.deepEqual(row(after, 2), row(ref, 2), "position 2 does not see its own token");
  for (const t of [0, 1, 3, 4, 5]) assert.notDeepEqual(row(after, t), row(ref, t), `position ${t} sees position 2`);
  // With length 2 only keys 0 and 1 count: changing the tokens at 2… leaves every output unchanged.
  const short = run(base, 2);
  const shortChanged = run(changed, 2);
  assert.deepEqual([...shortChanged], [...short]);
  assert.notDeepEqual([...short], [...ref]);
  tf.dispose([base, changed]);
  model.dispose();
  store.dispose();
});

Deno.test("BCN: languageLengths = first null + 1, 0 → clamped to [2, T]", async () => {
  await useWasm();
  // argmax rows: [3, 0, …] → 2; [1, 2, 3, 0, …] → 4; no null → 0 → 2; null at 0 → 1 → 2.
  const argmax = [[3, 0, 1, 1], [1, 2, 3, 0], [1, 1, 1, 1], [0, 1, 1, 1]];
  const logits = tf.tidy(() => tf.mul(tf.oneHot(tf.tensor2d(argmax, [4, 4], "int32"), 5), 1) as tf.Tensor3D);
  const f = tf.tidy(() => tf.cast(logits, "float32") as tf.Tensor3D);
  assert.deepEqual([...languageLengths(f)], [2, 4, 2, 2]);
  tf.dispose([logits, f]);
});

Deno.test("stopGradient: identity forward, zero gradient", async () => {
  await useWasm();
  const x = tf.variable(tf.tensor1d([1, 2, 3]));
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.add(tf.square(stopGradient(x)), x)) as tf.Scalar, [x]);
  assert.equal(value.dataSync()[0], 14 + 6);
  assert.deepEqual([...grads[x.name].dataSync()], [1, 1, 1]);
  tf.dispose([x, value, ...Object.values(grads)]);
});

Deno.test("loss targets: one-hot, or ABINet's random smoothing (rows sum to 1, the label keeps ≥ 1 − factor)", () => {
  assert.deepEqual([...smoothedTargets(Int32Array.of(2, 0), 3, 0, Math.random)], [0, 0, 1, 1, 0, 0]);
  let state = 1;
  const random = () => (state = (state * 16807) % 2147483647) / 2147483647;
  const t = smoothedTargets(Int32Array.of(1, 4, 0), 5, 0.1, random);
  for (let r = 0; r < 3; r++) {
    const row = [...t.slice(r * 5, r * 5 + 5)];
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-6);
    assert.ok(row[[1, 4, 0][r]] >= 0.9 - 1e-6);
    assert.ok(row.some((x, c) => c !== [1, 4, 0][r] && x > 0), "noise on the other classes");
  }
  assert.throws(() => smoothedTargets(Int32Array.of(5), 5, 0, Math.random), /label 5/);
});
