import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { environmentFingerprint, selectBackend, smokeTrain, tensorflowPackage } from "./select.ts";
import { currentBuild } from "./torch/build.ts";

Deno.test("selectBackend picks a working backend here (torch-cpu with the shim, else wasm) and logs why", async () => {
  const lines: string[] = [];
  const chosen = await selectBackend({ log: (l) => lines.push(l) });
  assert.equal(chosen.name, tf.getBackend());
  assert.equal(chosen.tfjsVersion, tf.version.tfjs);
  const shim = await currentBuild();
  // No GPU here: torch-cuda is rejected with its reason, then torch-cpu is the first that works.
  assert.equal(chosen.name, shim ? "torch" : "wasm", chosen.details);
  assert.ok(lines.some((l) => l.startsWith("backend torch-cuda: rejected")), lines.join("\n"));
  assert.ok(lines.some((l) => l.includes("accepted")), lines.join("\n"));
  const env = environmentFingerprint();
  assert.equal(env.backend, chosen.name);
  if (shim) assert.deepEqual(env.torch, chosen.torch);
  await tf.setBackend("cpu");
});

Deno.test("force: a working backend is used, a broken or unknown one fails clearly", async () => {
  const cpu = await selectBackend({ force: "cpu" });
  assert.equal(cpu.name, "cpu");
  assert.equal(tf.getBackend(), "cpu");
  await assert.rejects(() => selectBackend({ force: "nope" }), /unknown backend "nope"/);
  if ((await tensorflowPackage()) === undefined) {
    await assert.rejects(() => selectBackend({ force: "tensorflow" }), /forced backend "tensorflow" does not work/);
  }
  const wasm = await selectBackend({ force: "wasm" });
  assert.equal(wasm.name, "wasm");
});

Deno.test("the smoke training step trains on wasm and cpu without leaking tensors", async () => {
  for (const name of ["wasm", "cpu"]) {
    await selectBackend({ force: name });
    const before = tf.memory().numTensors;
    assert.equal(await smokeTrain(), undefined);
    assert.equal(tf.memory().numTensors, before, name);
  }
});
