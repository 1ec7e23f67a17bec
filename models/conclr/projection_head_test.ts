import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { useWasm } from "../../backend/wasm.ts";
import { ParamStore } from "../nn/params.ts";
import { loadStateDict } from "../nn/state.ts";
import { readSafeTensors } from "../safetensors.ts";
import { ProjectionHead } from "./projection_head.ts";
import { compare, fixturesRoot, fixtureTensor, HAVE_FIXTURES, readJson } from "./test_fixtures.ts";

for (const backend of ["cpu", "wasm"]) {
  Deno.test({
    name: `projection head: fixture parity (mlp 512→512→128, atol 1e-5) on ${backend}${
      HAVE_FIXTURES ? "" : " (SKIPPED: ../shared/fixtures is absent)"
    }`,
    ignore: !HAVE_FIXTURES,
  }, async () => {
    const root = fixturesRoot("projection head parity");
    if (!root) return;
    if (backend === "wasm") await useWasm();
    else await tf.setBackend("cpu");
    const dir = `${root}conclr_projection_head`;
    // deno-lint-ignore no-explicit-any
    const j = await readJson<any>(`${dir}/projection_head.json`);
    const params = await readSafeTensors(`${dir}/${j.params.safetensors}`);
    const before = tf.memory().numTensors;
    const store = new ParamStore(1);
    const head = new ProjectionHead(store.root().child("projection_head"), {
      inputDim: 512,
      outputDim: 128,
      kind: "mlp",
    });
    // The fixture's state dict is the head's own; in ConCLR it sits under `projection_head.`.
    assert.deepEqual(
      [...store.weights.keys()],
      (j.params.manifest as { name: string }[]).map((m) => `projection_head.${m.name}`),
    );
    const state = new Map([...params.tensors].map(([k, v]) => [`projection_head.${k}`, v]));
    loadStateDict(store, state, { source: "projection head fixture" });
    const x = await fixtureTensor(j.inputs.x, dir);
    const expected = await fixtureTensor(j.expected.embed, dir);
    const input = tf.tensor3d(x.data as Float32Array, x.shape as [number, number, number]);
    const out = head.apply(input);
    assert.deepEqual(out.shape, [2, 26, 128]);
    const cmp = compare(out.dataSync(), expected.data, 1e-5, 0);
    console.log(`  ${backend} projection head max |Δ| ${cmp.maxAbs.toExponential(2)}`);
    assert.ok(cmp.ok, `max abs diff ${cmp.maxAbs}`);
    tf.dispose([input, out]);
    store.dispose();
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  });
}

Deno.test("projection head: linear option, unit rows, seeded init", async () => {
  await tf.setBackend("cpu");
  const make = () => {
    const store = new ParamStore(7);
    const head = new ProjectionHead(store.root().child("projection_head"), {
      inputDim: 8,
      outputDim: 4,
      kind: "linear",
    });
    return { store, head };
  };
  const a = make(), b = make();
  assert.deepEqual([...a.store.weights.keys()], ["projection_head.head.weight", "projection_head.head.bias"]);
  assert.deepEqual(
    Array.from(a.store.weights.get("projection_head.head.weight")!.dataSync()),
    Array.from(b.store.weights.get("projection_head.head.weight")!.dataSync()),
  );
  const x = tf.randomNormal([2, 3, 8], 0, 1, "float32", 3) as tf.Tensor3D;
  const y = a.head.apply(x);
  const norms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(y), 2)).dataSync());
  for (const n of norms) assert.ok(Math.abs(n - 1) < 1e-5, `norm ${n}`);
  tf.dispose([x, y]);
  a.store.dispose();
  b.store.dispose();
});
