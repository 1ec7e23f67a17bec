import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import "../training/test_family.ts";
import { getModelFamily } from "../models/recognizer.ts";
import { CHECKPOINT_FORMAT, saveCheckpoint } from "../training/checkpoint.ts";
import { DEMO_DIR, HAVE_DEMO } from "../training/test_context.ts";
import { expandImages, main } from "./read.ts";

const LINE = /^(.+): ([a-z0-9]*) \((0|1)\.\d{4}\)$/;

Deno.test({
  name: `read: prints "file: text (confidence)" for each demo image${
    HAVE_DEMO ? "" : " (SKIPPED: ../shared/data is absent)"
  }`,
  ignore: !HAVE_DEMO,
}, async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    // An untrained tiny checkpoint: the text is arbitrary, the format is not.
    const family = getModelFamily("strata_test_tiny");
    const config = family.config.parse({ height: 16, width: 48 }, []) as Record<string, unknown>;
    const model = family.create(config, 1, 37);
    const ckpt = join(dir, "tiny.safetensors");
    await saveCheckpoint(ckpt, {
      model,
      meta: {
        format: CHECKPOINT_FORMAT,
        model_family: "strata_test_tiny",
        model_config: config,
        num_classes: 37,
        data: { height: 16, width: 48, channels: 3, normalize: "imagenet", protocol: 36, max_length: 25 },
        training: {},
      },
    });
    model.dispose();
    const lines: string[] = [];
    const before = tf.memory().numTensors;
    assert.equal(
      await main(["--checkpoint", ckpt, "--backend", "cpu", "--batch-size", "4", DEMO_DIR], (l) => lines.push(l)),
      0,
    );
    assert.equal(tf.memory().numTensors, before);
    assert.equal(lines.length, 6, lines.join("\n"));
    const files = (await expandImages([DEMO_DIR])).map((f) => f);
    for (const [i, l] of lines.entries()) {
      const m = LINE.exec(l);
      assert.ok(m, `bad line: ${l}`);
      assert.equal(m[1], files[i]);
    }
    assert.deepEqual((await expandImages([join(DEMO_DIR, "*.jpg")])).length, 4);
    assert.deepEqual((await expandImages([join(DEMO_DIR, "ic1[35]_*.png")])).length, 2);
    assert.equal(await main(["--backend", "cpu", DEMO_DIR], () => {}), 2);
    assert.equal(await main(["--checkpoint", ckpt, join(dir, "missing.png")], () => {}), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
