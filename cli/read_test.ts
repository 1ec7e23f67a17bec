import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import "../training/test_family.ts";
import { getModelFamily } from "../models/recognizer.ts";
import { CHECKPOINT_FORMAT, saveCheckpoint } from "../training/checkpoint.ts";
import { DEMO_DIR, HAVE_DEMO } from "../training/test_context.ts";
import { expandImages, main } from "./read.ts";
import { formatConfidence } from "./attention_png.ts";
import { TEST_MICRO_CONFIG } from "../models/abinet/test_config.ts";
import "../models/abinet/mod.ts";
import { decodeImage, loadCanvas } from "../data/image.ts";

const LINE = /^(.+): ([a-z0-9]*) \((<0\.0001|[01]\.\d{4})\)$/;

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

Deno.test("read: confidences are meaningful at both ends (<0.0001, 4 decimals)", () => {
  assert.equal(formatConfidence(1e-9), "<0.0001");
  assert.equal(formatConfidence(0), "<0.0001");
  assert.equal(formatConfidence(0.00012), "0.0001");
  assert.equal(formatConfidence(0.93), "0.9300");
  assert.equal(formatConfidence(1), "1.0000");
});

Deno.test("read --attention: one PNG per image, a row per decoded character and the end of the word", async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    const family = getModelFamily("abinet_vision");
    const config = family.config.parse({ preset: "micro", ...TEST_MICRO_CONFIG }, []) as Record<string, unknown>;
    const model = family.create(config, 3, 37);
    const ckpt = join(dir, "m.safetensors");
    await saveCheckpoint(ckpt, {
      model,
      meta: {
        format: CHECKPOINT_FORMAT,
        model_family: "abinet_vision",
        model_config: config,
        num_classes: 37,
        data: { height: 16, width: 32, channels: 3, normalize: "imagenet", protocol: 36, max_length: 5 },
        training: {},
      },
    });
    model.dispose();
    const { createCanvas } = await loadCanvas();
    const images = join(dir, "img");
    await Deno.mkdir(images);
    for (const [i, colour] of ["#204080", "#d0a030"].entries()) {
      const c = createCanvas(60 + 20 * i, 20);
      const ctx = c.getContext("2d");
      ctx.fillStyle = colour;
      ctx.fillRect(0, 0, c.width, c.height);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(10, 5, 20, 10);
      await Deno.writeFile(join(images, `w${i}.png`), c.encodeSync("png"));
    }
    const lines: string[] = [];
    const out = join(dir, "att");
    const before = tf.memory().numTensors;
    assert.equal(
      await main(["--checkpoint", ckpt, "--backend", "cpu", "--attention", out, images], (l) => lines.push(l)),
      0,
    );
    assert.equal(tf.memory().numTensors, before);
    assert.equal(lines.length, 2);
    assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name).sort(), ["w0.png", "w1.png"]);
    for (const [i, l] of lines.entries()) {
      const text = LINE.exec(l)![2];
      const png = await decodeImage(await Deno.readFile(join(out, `w${i}.png`)));
      // Rows: the input, then each decoded character and the end of the word (3× the 16-px model height, 4-px gaps);
      // an untrained model may run to the last position without an end of word (T = 6 rows then).
      const rows = png.height / (16 * 3 + 4) - 4 / (16 * 3 + 4);
      assert.ok(rows === text.length + 2 || (text.length === 6 && rows === 7), `${l}: ${png.height} px high`);
      assert.equal(png.width, 96 + 32 * 3 + 8);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
