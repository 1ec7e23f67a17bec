import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import "../models/parseq/mod.ts";
import { getModelFamily } from "../models/recognizer.ts";
import { saveTestCheckpoint } from "../training/test_checkpoint.ts";
import { DEMO_DIR, HAVE_DEMO } from "../training/test_context.ts";
import { main } from "./read.ts";
import { READ_LINE as LINE } from "./test_read.ts";

Deno.test({
  name: `read: parseq with --decode-ar / --refine-iters / --rotation${
    HAVE_DEMO ? "" : " (SKIPPED: ../shared/data is absent)"
  }`,
  ignore: !HAVE_DEMO,
}, async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    const family = getModelFamily("parseq");
    const config = family.config.parse({ preset: "micro", embed_dim: 16 }, []) as Record<string, unknown>;
    const model = family.create(config, 1, 37);
    const ckpt = join(dir, "parseq.safetensors");
    await saveTestCheckpoint(ckpt, model, { config });
    model.dispose();
    for (
      const opts of [[], ["--decode-ar", "false", "--refine-iters", "2"], ["--rotation", "90", "--refine-iters", "0"]]
    ) {
      const lines: string[] = [];
      const before = tf.memory().numTensors;
      assert.equal(await main(["--checkpoint", ckpt, "--backend", "cpu", ...opts, DEMO_DIR], (l) => lines.push(l)), 0);
      assert.equal(tf.memory().numTensors, before, `tensors leaked with ${opts.join(" ")}`);
      assert.equal(lines.length, 6);
      for (const l of lines) assert.ok(LINE.test(l), `bad line: ${l}`);
    }
    assert.equal(await main(["--checkpoint", ckpt, "--rotation", "45", DEMO_DIR], () => {}), 2);
    assert.equal(await main(["--checkpoint", ckpt, "--decode-ar", "yes", DEMO_DIR], () => {}), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
