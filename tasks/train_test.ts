import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import "../training/test_family.ts";
import trainKind, { type TrainParams } from "./train.ts";
import { SchemaError } from "../pipeline/schema.ts";
import { readCheckpoint } from "../training/checkpoint.ts";
import { fakeContext, makeDemoLmdb, resolved } from "../training/test_context.ts";

const arch = { height: 8, width: 32, channels: 4 };
const params = (extra: Record<string, unknown> = {}) =>
  trainKind.params.parse({
    model: "strata_test_tiny",
    architecture: arch,
    data: { image: { height: 8, width: 32 } }, // augmentation on (the default): resume must replay it too
    batch_size: 4,
    steps: 6,
    lr: 3e-3,
    validate_every: 3,
    checkpoint_every: 3,
    log_every: 2,
    backend: "cpu",
    ...extra,
  }, []) as TrainParams;

Deno.test("train params: architecture errors keep their path; steps xor epochs", () => {
  assert.throws(
    () => params({ architecture: { chanels: 4 } }),
    (e: unknown) => e instanceof SchemaError && e.path.join(".") === "architecture.chanels",
  );
  assert.throws(
    () => params({ architecture: { channels: "x" } }),
    (e: unknown) => e instanceof SchemaError && e.path.join(".") === "architecture.channels",
  );
  assert.throws(() => params({ epochs: 2 }), SchemaError);
  assert.throws(() => params({ steps: undefined }), SchemaError);
  assert.equal(params().clip_grad_norm, 20);
  assert.equal(params().schedule.type, "constant");
});

Deno.test("train kind: outputs, and an interrupted run resumes to the same weights", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const inputs = { train: [resolved(lmdb, "demo")], val: [resolved(lmdb, "demo")] };
    const run = async (name: string, scratch: string, progress?: (m: string) => void) => {
      const ctx = fakeContext({ params: params(), inputs, workDir: join(dir, name), scratch, progress });
      return await trainKind.run(ctx);
    };
    const env = await trainKind.environment!(params());
    assert.equal(env.backend, "cpu");
    assert.ok(env.tfjs.startsWith("4."));

    const before = tf.memory().numTensors;
    const full = await run("a", join(dir, "scratch_a"));
    assert.equal(tf.memory().numTensors, before, "tensors leaked by a whole run");
    assert.equal(full?.summary?.steps, 6);
    const outA = join(dir, "a", "outputs");
    for (const f of ["best.safetensors", "last.safetensors", "config.json"]) await Deno.stat(join(outA, "model", f));
    const config = JSON.parse(await Deno.readTextFile(join(outA, "model", "config.json")));
    assert.equal(config.model_family, "strata_test_tiny");
    assert.equal(config.data.protocol, 36);
    assert.equal(config.data.height, 8);
    const curve = (await Deno.readTextFile(join(outA, "curve"))).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(curve.map((r) => r.step), [2, 3, 4, 6]);
    assert.ok(curve[1].val && typeof curve[1].val.word_accuracy === "number");

    // Crash after step 4 (the checkpoint at step 3 survives in scratch), then rerun.
    await assert.rejects(
      run("b", join(dir, "scratch_b"), (m) => {
        if (m.startsWith("step 4/")) throw new Error("simulated crash");
      }),
      /simulated crash/,
    );
    const resumed = await run("c", join(dir, "scratch_b"));
    assert.equal(resumed?.summary?.resumed_from, 3);
    const a = await readCheckpoint(join(outA, "model", "last.safetensors"));
    const c = await readCheckpoint(join(dir, "c", "outputs", "model", "last.safetensors"));
    for (const [k, t] of a.file.tensors) assert.deepEqual(c.file.tensors.get(k)!.data, t.data, `tensor ${k}`);
    const best = await readCheckpoint(join(outA, "model", "best.safetensors"));
    assert.ok([3, 6].includes(best.meta.training.step as number));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train kind: an init_<part> input needs a model that takes it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const ctx = fakeContext({
      params: params({ steps: 1 }),
      inputs: { train: [resolved(lmdb, "demo")], init_vision: [resolved(lmdb, "some_model")] },
      workDir: join(dir, "a"),
      scratch: join(dir, "s"),
    });
    await assert.rejects(trainKind.run(ctx), /strata_test_tiny cannot take an init_vision input/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
