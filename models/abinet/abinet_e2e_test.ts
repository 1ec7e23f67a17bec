/**
 * The full ABINet pipeline end to end with the real stage kinds on wasm: an `abinet_vision` train stage and a
 * `pretrain_lm` stage (tiny text file) hand their checkpoints to an `abinet` train stage (`init_vision`,
 * `init_language`), which is evaluated (every output scored) and read with `deno task read`.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { main as readMain } from "../../cli/read.ts";
import evaluateKind from "../../tasks/evaluate.ts";
import pretrainKind from "../../tasks/pretrain_lm.ts";
import trainKind from "../../tasks/train.ts";
import { readCheckpoint } from "../../training/checkpoint.ts";
import { DEMO_DIR, fakeContext, HAVE_DEMO, makeDemoLmdb, resolved } from "../../training/test_context.ts";

Deno.test("abinet tiny: abinet_vision + pretrain_lm → abinet train → evaluate → read (end to end)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const vision = { preset: "tiny", num_layers: 1 };
    const common = { batch_size: 3, steps: 3, checkpoint_every: 3, log_every: 1, backend: "wasm" };
    const modelInput = (path: string, stageId: string) => ({ ...resolved(path, stageId), output: "model" });

    // 1. The vision model alone.
    await trainKind.run(fakeContext({
      params: trainKind.params.parse({ model: "abinet_vision", architecture: vision, lr: 1e-3, ...common }, []),
      inputs: { train: [resolved(lmdb, "demo")] },
      workDir: join(dir, "v"),
      scratch: join(dir, "vs"),
    }));
    // 2. The language model on a tiny text file (d_model = the tiny vision width, 128).
    const text = join(dir, "words.txt");
    await Deno.writeTextFile(text, "street coffee market station garden window bridge river\n");
    await pretrainKind.run(fakeContext({
      params: pretrainKind.params.parse({
        architecture: { preset: "tiny", num_layers: 1 },
        held_out_fraction: 0,
        lr: 1e-3,
        ...common,
      }, []),
      inputs: { text: [resolved(text, "path:words.txt")] },
      workDir: join(dir, "l"),
      scratch: join(dir, "ls"),
    }));
    // 3. ABINet from both (lr 0: the weights stay those loaded, which this test checks).
    const arch = { vision, language: { preset: "tiny", num_layers: 1 }, iter_size: 2 };
    const vDir = join(dir, "v", "outputs", "model"), lDir = join(dir, "l", "outputs", "model");
    const ctx = fakeContext({
      params: trainKind.params.parse({ model: "abinet", architecture: arch, lr: 0, ...common }, []),
      inputs: {
        train: [resolved(lmdb, "demo")],
        init_vision: [modelInput(vDir, "train_vision")],
        init_language: [modelInput(lDir, "pretrain_lm")],
      },
      workDir: join(dir, "a"),
      scratch: join(dir, "as"),
    });
    const summary = (await trainKind.run(ctx))!.summary as Record<string, unknown>;
    assert.ok(
      ctx.logs.some((l) => /^init_vision: \d+ tensors from train_vision \(abinet_vision/.test(l)),
      ctx.logs.join("\n"),
    );
    assert.ok(ctx.logs.some((l) => /^init_language: \d+ tensors from pretrain_lm \(abinet_language/.test(l)));
    const curve = (await Deno.readTextFile(join(dir, "a", "outputs", "curve"))).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(Object.keys(curve[0].loss_parts).sort(), ["alignment", "language", "vision"]);
    assert.ok(Number.isFinite(summary.final_loss as number));
    const aDir = join(dir, "a", "outputs", "model");
    const a = await readCheckpoint(join(aDir, "last.safetensors"));
    const v = await readCheckpoint(join(vDir, "best.safetensors"));
    const l = await readCheckpoint(join(lDir, "best.safetensors"));
    // Loaded unchanged (lr 0). Checkpoints of families with `state()` are in PyTorch layout ([out, in]), the
    // abinet family's in tfjs layout ([in, out]): 2-D tensors are compared up to that transpose. (A failing
    // deepEqual on these arrays builds a diff big enough to exhaust memory, so the check is a max difference.)
    const same = (x: { shape: number[]; data: ArrayLike<number> }, y: { shape: number[]; data: ArrayLike<number> }) => {
      const transposed = x.shape.length === 2 && x.shape[0] === y.shape[1] && x.shape[1] === y.shape[0] &&
        x.shape.join() !== y.shape.join();
      assert.ok(transposed || x.shape.join() === y.shape.join(), `shapes ${x.shape} vs ${y.shape}`);
      let worst = 0;
      for (let i = 0; i < x.data.length; i++) {
        const j = transposed ? (i % x.shape[1]) * x.shape[0] + Math.floor(i / x.shape[1]) : i;
        worst = Math.max(worst, Math.abs(x.data[i] - y.data[j]));
      }
      assert.equal(worst, 0);
    };
    same(a.file.tensors.get("vision.cls.weight")!, v.file.tensors.get("cls.weight")!);
    same(
      a.file.tensors.get("language.model.layers.0.linear1.weight")!,
      l.file.tensors.get("model.layers.0.linear1.weight")!,
    );
    assert.equal((a.meta.training.initialised_from as unknown[]).length, 2);

    // 4. Evaluate: the final (alignment) metrics plus every output.
    const before = tf.memory().numTensors;
    await evaluateKind.run(fakeContext({
      params: evaluateKind.params.parse({ batch_size: 4, backend: "wasm", checkpoint: "last" }, []),
      inputs: { model: [{ ...modelInput(aDir, "train"), kind: "train" }], datasets: [resolved(lmdb, "demo")] },
      workDir: join(dir, "e"),
      scratch: join(dir, "es"),
    }));
    assert.equal(tf.memory().numTensors, before, "evaluation leaks no tensors");
    const metrics = JSON.parse(await Deno.readTextFile(join(dir, "e", "outputs", "metrics")));
    assert.equal(metrics.model.family, "abinet");
    const ds = metrics.datasets[0];
    assert.deepEqual(Object.keys(ds.outputs), ["vision", "language_1", "alignment_1", "language_2", "alignment_2"]);
    assert.equal(ds.word_accuracy, ds.outputs.alignment_2.word_accuracy);
    assert.equal(ds.ccr, ds.outputs.alignment_2.ccr);
    assert.deepEqual(Object.keys(metrics.combined.outputs), Object.keys(ds.outputs));

    // 5. Read images with the checkpoint.
    if (!HAVE_DEMO) {
      console.log(`note: ${DEMO_DIR} is absent; the read step is skipped`);
      return;
    }
    const lines: string[] = [];
    const code = await readMain(
      ["--checkpoint", aDir, "--backend", "wasm", join(DEMO_DIR, "*.png")],
      (x) => lines.push(x),
    );
    assert.equal(code, 0);
    assert.equal(lines.length, 2);
    for (const line of lines) assert.match(line, /^\S+\.png: \S* \((<0\.0001|\d\.\d{4})\)$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("abinet: the vision config's image size must agree with the data params", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const params = trainKind.params.parse({
      model: "abinet",
      architecture: { vision: { preset: "micro", image_height: 16, image_width: 64 } },
      steps: 1,
      batch_size: 2,
      backend: "wasm",
    }, []);
    const ctx = fakeContext({
      params,
      inputs: { train: [resolved(lmdb, "demo")] },
      workDir: dir,
      scratch: join(dir, "s"),
    });
    await assert.rejects(trainKind.run(ctx), /architecture\.vision\.image_height is 16 but data\.image\.height is 32/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("abinet micro: an interrupted run (label smoothing on) resumes to the same weights, bit for bit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lmdb = join(dir, "demo");
    await makeDemoLmdb(lmdb);
    const params = trainKind.params.parse({
      model: "abinet",
      architecture: {
        vision: { preset: "micro", num_layers: 1 },
        language: { preset: "micro" },
        iter_size: 2,
        label_smoothing: 0.1,
      },
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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
