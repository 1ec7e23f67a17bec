/**
 * The train stage on the native torch backend: its environment (hence its cache key) names the backend, the
 * device, libtorch and TF32; a short run trains there; a forced torch backend that cannot load fails with a
 * clear message. Skipped visibly when the shim is not built.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import "../training/test_family.ts";
import trainKind, { type TrainParams } from "./train.ts";
import { currentBuild } from "../backend/torch/build.ts";
import { fakeContext, makeDemoLmdb, resolved } from "../training/test_context.ts";

const build = await currentBuild();
const SKIP = build ? "" : " (SKIPPED: the libtorch shim is not built; run `deno task setup` with libtorch installed)";

const params = (backend: string) =>
  trainKind.params.parse({
    model: "strata_test_tiny",
    architecture: { height: 8, width: 32, channels: 4 },
    data: { image: { height: 8, width: 32 } },
    batch_size: 4,
    steps: 3,
    lr: 3e-3,
    backend,
  }, []) as TrainParams;

Deno.test(`train on backend torch: the key's environment names torch, device, libtorch and TF32${SKIP}`, {
  ignore: !build,
}, async () => {
  const dir = await Deno.makeTempDir();
  const previous = Deno.env.get("STRATA_CACHE");
  Deno.env.set("STRATA_CACHE", join(dir, "cache")); // the backend probe record lives beside the cache
  try {
    const env = await trainKind.environment!(params("torch"));
    assert.equal(env.backend, "torch");
    assert.equal(env.device, "cpu");
    assert.equal(env.libtorch, build!.libtorch.version);
    assert.equal(env.tf32, "matmul off, conv off");
    const cpu = await trainKind.environment!(params("cpu"));
    assert.notDeepEqual(env, cpu, "a torch run and a cpu run must not share a cache key");

    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const ctx = fakeContext({
      params: params("torch"),
      inputs: { train: [resolved(lmdb, "demo")] },
      workDir: join(dir, "run"),
      scratch: join(dir, "scratch"),
    });
    const result = await trainKind.run(ctx);
    assert.equal(result?.summary?.steps, 3);
    assert.ok(ctx.logs.some((l) => /backend torch \(torch \(libtorch/.test(l)), ctx.logs.join("\n"));
  } finally {
    if (previous === undefined) Deno.env.delete("STRATA_CACHE");
    else Deno.env.set("STRATA_CACHE", previous);
    await tf.setBackend("cpu");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a forced torch backend that cannot load fails with a message that says how to get it", async () => {
  const empty = await Deno.makeTempDir();
  try {
    const probe = new URL("../training/probe_backend.ts", import.meta.url).pathname;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", probe, "torch"],
      env: { STRATA_TORCH_BUILD_DIR: empty, STRATA_CACHE: join(empty, "cache") },
      stdout: "null",
      stderr: "piped",
    }).output();
    const message = new TextDecoder().decode(stderr);
    assert.equal(code, 1);
    assert.match(message, /the forced backend "torch" does not work/);
    assert.match(message, /deno task setup/);
    assert.match(message, /libtorch-dev/);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test(`an allocation the device cannot hold becomes one error naming stage, batch size and backend${SKIP}`, {
  ignore: !build,
}, async () => {
  const { explainOutOfMemory } = await import("../training/train_stage.ts");
  const { activateTorch } = await import("../backend/torch/mod.ts");
  await activateTorch("cpu");
  try {
    await assert.rejects(
      explainOutOfMemory(
        "train[model=x,seed=1]",
        384,
        { name: "torch", details: "", torch: { device: "cpu" } },
        "/scratch/k",
        () => Promise.resolve(tf.fill([1 << 20, 1 << 20], 0)),
      ),
      /train\[model=x,seed=1\]: out of memory on torch on cpu at batch size 384 .*checkpoint in \/scratch\/k is kept/,
    );
  } finally {
    await tf.setBackend("cpu");
  }
});
