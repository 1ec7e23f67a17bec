import * as tf from "@tensorflow/tfjs";
import { useWasm } from "../../backend/wasm.ts";
import { assertClose, loadFixture, nchwToNhwc, skipUnlessFixture } from "../../testing/fixtures.ts";
import { EVAL } from "../nn/layers.ts";
import { ParamStore } from "../nn/params.ts";
import { loadStateDict } from "../nn/state.ts";
import { PositionAttention } from "./position_attention.ts";

const FILE = "abinet_position_attention/position_attention.json";

Deno.test({ name: "parity: position_attention", ignore: skipUnlessFixture(FILE) }, async () => {
  await useWasm();
  const fx = await loadFixture(FILE);
  const store = new ParamStore(0);
  const att = new PositionAttention(store.root(), {
    maxLength: 26,
    inChannels: 512,
    numChannels: 64,
    height: 8,
    width: 32,
  });
  loadStateDict(store, await fx.params(), { source: FILE });
  const xi = nchwToNhwc(fx.inputs.get("x")!);
  const x = tf.tensor4d(xi.data as Float32Array, [2, 8, 32, 512]);
  const out = tf.tidy(() => {
    const o = att.apply(x, EVAL);
    return [o.attnVecs, o.attnScores, tf.transpose(o.keyMap, [0, 3, 1, 2])];
  });
  const { atol, rtol } = fx.json.tolerance.recommended;
  const names = ["attn_vecs", "attn_scores", "key_map"];
  const diffs = names.map((n, i) => assertClose(n, out[i].dataSync(), fx.expected.get(n)!.data, atol, rtol).maxAbs);
  console.log(`position_attention max |diff|: ${names.map((n, i) => `${n} ${diffs[i].toExponential(2)}`).join(", ")}`);
  tf.dispose([x, ...out]);
  store.dispose();
});
