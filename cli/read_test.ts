import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openLmdb } from "../data/lmdb.ts";
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

Deno.test("class 8: read recognises the images it can read and names the ones it cannot", async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir();
  const errors: string[] = [];
  const consoleError = console.error;
  try {
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
    // Real images from testdata, an undecodable one and an empty one in the middle of one batch.
    const imgs = join(dir, "imgs");
    await Deno.mkdir(imgs);
    const r = await openLmdb(fileURLToPath(new URL("../testdata/python_lmdb", import.meta.url)));
    for (let i = 1; i <= 3; i++) {
      const s = r.read(i);
      assert.ok(s.ok);
      await Deno.writeFile(join(imgs, `${i}_good.${s.sample.image[0] === 0xff ? "jpg" : "png"}`), s.sample.image);
    }
    await r.close();
    await Deno.writeTextFile(join(imgs, "1_z_bad.png"), "not a png");
    await Deno.writeFile(join(imgs, "2_z_empty.jpg"), new Uint8Array());
    console.error = (...a: unknown[]) => errors.push(a.join(" "));
    const lines: string[] = [];
    const code = await main(
      ["--checkpoint", ckpt, "--backend", "cpu", "--batch-size", "8", imgs, join(dir, "missing.png")],
      (l) => lines.push(l),
    );
    console.error = consoleError;
    assert.equal(code, 1);
    assert.deepEqual(lines.map((l) => l.replace(/: .*$/, "").replace(/^.*[\\/]/, "").replace(/\..*$/, "")), [
      "1_good",
      "2_good",
      "3_good",
    ]);
    assert.equal(lines.length, 3, lines.join("\n"));
    for (const l of lines) assert.match(l, LINE);
    assert.ok(errors.some((e) => /1_z_bad\.png: cannot read: /.test(e)), errors.join("\n"));
    assert.ok(errors.some((e) => /2_z_empty\.jpg: cannot read: /.test(e)), errors.join("\n"));
    assert.ok(errors.some((e) => /missing\.png: cannot read: no such file/.test(e)), errors.join("\n"));
    assert.ok(errors.some((e) => /3 of 6 images read; could not read 3/.test(e)), errors.join("\n"));
  } finally {
    console.error = consoleError;
    await Deno.remove(dir, { recursive: true });
  }
});
