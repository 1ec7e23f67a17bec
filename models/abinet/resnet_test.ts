import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import { assertClose, loadFixture, nchwToNhwc, skipUnlessFixture } from "../../testing/fixtures.ts";
import { EVAL } from "../nn/layers.ts";
import { ParamStore } from "../nn/params.ts";
import { loadStateDict } from "../nn/state.ts";
import { BasicBlock, ResNet, RESNET45 } from "./resnet.ts";
import type { NamedTensor } from "../safetensors.ts";

const nhwc = (t: NamedTensor) => {
  const n = nchwToNhwc(t);
  return tf.tensor4d(n.data as Float32Array, n.shape as [number, number, number, number]);
};
/** NHWC tensor → NCHW flat data, to compare with PyTorch outputs. */
const toNchw = (t: tf.Tensor4D) => tf.tidy(() => tf.transpose(t, [0, 3, 1, 2]).dataSync() as Float32Array);

for (
  const [name, inP, planes, stride] of [["basicblock_identity", 64, 64, 1], [
    "basicblock_stride2_downsample",
    64,
    128,
    2,
  ]] as const
) {
  const file = `abinet_resnet/${name}.json`;
  Deno.test({ name: `parity: ${name}`, ignore: skipUnlessFixture(file) }, async () => {
    await useWasm();
    const fx = await loadFixture(file);
    const store = new ParamStore(0);
    const block = new BasicBlock(store.root(), inP, planes, stride);
    loadStateDict(store, await fx.params(), { source: file });
    const x = nhwc(fx.inputs.get("x")!);
    const y = tf.tidy(() => block.apply(x, EVAL));
    const { atol, rtol } = fx.json.tolerance.recommended;
    const d = assertClose(name, toNchw(y), fx.expected.get("output")!.data, atol, rtol);
    console.log(`${name}: max |diff| ${d.maxAbs.toExponential(2)}`);
    tf.dispose([x, y]);
    store.dispose();
  });
}

Deno.test(
  { name: "parity: resnet45 (fxgen params)", ignore: skipUnlessFixture("abinet_resnet/resnet45.json") },
  async () => {
    await useWasm();
    const fx = await loadFixture("abinet_resnet/resnet45.json");
    const store = new ParamStore(0);
    const net = new ResNet(store.root(), RESNET45);
    loadStateDict(store, await fx.params(), { source: fx.path });
    const x = nhwc(fx.inputs.get("x")!);
    const taps: tf.Tensor4D[] = [];
    const y = tf.tidy(() => {
      const out = net.apply(x, EVAL, taps);
      taps.forEach((t) => tf.keep(t));
      return out;
    });
    assert.deepEqual(y.shape, [2, 8, 32, 512]);
    const { atol, rtol } = fx.json.tolerance.recommended;
    for (let i = 0; i < 4; i++) {
      const key = `act_layer${i + 1}`;
      const d = assertClose(key, toNchw(taps[i]), fx.expected.get(key)!.data, atol, rtol);
      console.log(`resnet45 ${key}: max |diff| ${d.maxAbs.toExponential(2)}`);
    }
    const d = assertClose("resnet45 output", toNchw(y), fx.expected.get("output")!.data, atol, rtol);
    console.log(`resnet45 output: max |diff| ${d.maxAbs.toExponential(2)}`);
    tf.dispose([x, y, ...taps]);
    store.dispose();
  },
);
