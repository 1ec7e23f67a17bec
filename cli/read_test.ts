import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openLmdb } from "../data/lmdb.ts";
import "../training/test_family.ts";
import { getModelFamily } from "../models/recognizer.ts";
import { saveTestCheckpoint } from "../training/test_checkpoint.ts";
import { DEMO_DIR, HAVE_DEMO } from "../training/test_context.ts";
import { expandImages, main } from "./read.ts";
import { formatConfidence } from "./attention_png.ts";
import { TEST_MICRO_CONFIG } from "../models/abinet/test_config.ts";
import "../models/abinet/mod.ts";
import { decodeImage, loadCanvas } from "../data/image.ts";
import { READ_LINE as LINE } from "./test_read.ts";

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
    await saveTestCheckpoint(ckpt, model, { config, data: { height: 16, width: 48 } });
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
    await saveTestCheckpoint(ckpt, model, { config, data: { height: 16, width: 48 } });
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
    await saveTestCheckpoint(ckpt, model, { config, data: { height: 16, width: 32, max_length: 5 } });
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
    // The overlay is drawn on the image as read, so rotated reading is refused rather than drawn misaligned.
    const consoleError = console.error;
    console.error = () => {};
    try {
      const args = ["--checkpoint", ckpt, "--backend", "cpu", "--attention", out, "--rotation", "90", images];
      assert.equal(await main(args, () => {}), 2);
    } finally {
      console.error = consoleError;
    }
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
