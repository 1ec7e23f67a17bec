/**
 * End to end with the real pieces: an LMDB written by data/lmdb.ts from the demo images, the loader, the
 * `abinet_vision` family (tiny preset), the train kind (5 steps on wasm with strata's kernels, with
 * validation and a resume checkpoint), then the evaluate kind; and `conclr_vision` resuming bit-identically.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import trainKind from "../tasks/train.ts";
import evaluateKind from "../tasks/evaluate.ts";
import { fakeContext, makeDemoLmdb, resolved } from "./test_context.ts";
import { readCheckpoint } from "./checkpoint.ts";

Deno.test("abinet_vision tiny: train 5 steps, evaluate (end to end)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const params = trainKind.params.parse({
      model: "abinet_vision",
      architecture: { preset: "tiny", num_layers: 1 },
      batch_size: 3,
      steps: 5,
      lr: 1e-3,
      validate_every: 5,
      checkpoint_every: 3,
      log_every: 1,
      backend: "wasm",
    }, []);
    const env = await trainKind.environment!(params);
    assert.equal(env.backend, "wasm");
    const t0 = performance.now();
    const progress: string[] = [];
    const train = await trainKind.run(fakeContext({
      params,
      inputs: { train: [resolved(lmdb, "demo")], val: [resolved(lmdb, "demo")] },
      workDir: join(dir, "t"),
      scratch: join(dir, "ts"),
      progress: (m) => progress.push(m),
    }));
    console.log(`train: ${((performance.now() - t0) / 1000).toFixed(1)} s`, JSON.stringify(train?.summary));
    assert.equal(train?.summary?.steps, 5);
    assert.match(progress.at(-1)!, /^step 5\/5 loss \d+\.\d+ [\d.]+ samples\/s ETA 0s$/);
    const curve = (await Deno.readTextFile(join(dir, "t", "outputs", "curve"))).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(curve.length, 5);
    assert.ok(curve.every((r) => Number.isFinite(r.loss) && r.loss_parts.ce > 0));
    assert.ok(curve[4].val);

    const before = tf.memory().numTensors;
    await evaluateKind.run(fakeContext({
      params: evaluateKind.params.parse({ batch_size: 6, backend: "wasm" }, []),
      inputs: {
        model: [{ ...resolved(join(dir, "t", "outputs", "model"), "train"), output: "model", kind: "train" }],
        datasets: [resolved(lmdb, "demo")],
      },
      workDir: join(dir, "e"),
      scratch: join(dir, "es"),
    }));
    assert.equal(tf.memory().numTensors, before);
    const metrics = JSON.parse(await Deno.readTextFile(join(dir, "e", "outputs", "metrics")));
    assert.equal(metrics.model.family, "abinet_vision");
    assert.equal(metrics.datasets[0].samples, 6);
    assert.equal(metrics.backend, "wasm");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conclr_vision tiny: ConAug + contrastive loss resume bit-identically (wasm)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const params = trainKind.params.parse({
      model: "conclr_vision",
      architecture: { preset: "tiny", num_layers: 1 },
      batch_size: 3,
      steps: 4,
      lr: 1e-3,
      checkpoint_every: 2,
      log_every: 1,
      backend: "wasm",
    }, []);
    const inputs = { train: [resolved(lmdb, "demo")] };
    const run = (name: string, scratch: string, progress?: (m: string) => void) =>
      trainKind.run(fakeContext({ params, inputs, workDir: join(dir, name), scratch: join(dir, scratch), progress }));
    await run("a", "sa");
    await assert.rejects(
      run("b", "sb", (m) => {
        if (m.startsWith("step 3/")) throw new Error("simulated crash");
      }),
      /simulated crash/,
    );
    const resumed = await run("c", "sb");
    assert.equal(resumed?.summary?.resumed_from, 2);
    const a = await readCheckpoint(join(dir, "a", "outputs", "model", "last.safetensors"));
    const c = await readCheckpoint(join(dir, "c", "outputs", "model", "last.safetensors"));
    for (const [k, t] of a.file.tensors) assert.deepEqual(c.file.tensors.get(k)!.data, t.data, `tensor ${k}`);
    const row = JSON.parse((await Deno.readTextFile(join(dir, "a", "outputs", "curve"))).split("\n")[0]);
    assert.deepEqual(Object.keys(row.loss_parts).sort(), ["ce_aug1", "ce_aug2", "ce_original", "contrastive"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
