import * as tf from "@tensorflow/tfjs";
import { useWasm } from "../../backend/wasm.ts";
import { assertClose, loadFixture, positionalEncodingTable, skipUnlessFixture } from "../../testing/fixtures.ts";
import { EVAL } from "../nn/layers.ts";
import { ParamStore } from "../nn/params.ts";
import { loadStateDict } from "../nn/state.ts";
import { TransformerEncoderLayer } from "./transformer.ts";

const FILE = "abinet_transformer/encoder_layer.json";

Deno.test({ name: "parity: encoder_layer (x + pe[:256])", ignore: skipUnlessFixture(FILE) }, async () => {
  await useWasm();
  const fx = await loadFixture(FILE);
  const store = new ParamStore(0);
  const layer = new TransformerEncoderLayer(store.root(), { dModel: 512, nhead: 8, ffn: 2048, dropout: 0.1 });
  loadStateDict(store, await fx.params(), { source: FILE });
  const xIn = fx.inputs.get("x")!; // [256, 2, 512] sequence-first
  const pe = await positionalEncodingTable();
  const weights: tf.Tensor3D[] = [];
  const [out, attn] = tf.tidy(() => {
    const x = tf.transpose(tf.tensor3d(xIn.data as Float32Array, [256, 2, 512]), [1, 0, 2]) as tf.Tensor3D;
    const withPe = tf.add(x, tf.tensor2d((pe.data as Float32Array).slice(0, 256 * 512), [256, 512])) as tf.Tensor3D;
    const y = layer.apply(withPe, EVAL, weights);
    return [tf.transpose(y, [1, 0, 2]), weights[0]];
  });
  const { atol, rtol } = fx.json.tolerance.recommended;
  const d = assertClose("encoder_layer output", out.dataSync(), fx.expected.get("output")!.data, atol, rtol);
  const a = assertClose("attention mean", attn.dataSync(), fx.expected.get("attn_weights_mean_over_heads")!.data, 1e-5);
  console.log(`encoder_layer: output max |diff| ${d.maxAbs.toExponential(2)}, attn ${a.maxAbs.toExponential(2)}`);
  tf.dispose([out, attn]);
  store.dispose();
});
