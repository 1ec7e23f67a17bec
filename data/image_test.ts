import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { decodeImage, ImageDecodeError, probeImage } from "./image.ts";
import { openLmdb } from "./lmdb.ts";
import { hashSeed, Rng } from "./random.ts";

const PY_LMDB = fileURLToPath(new URL("../testdata/python_lmdb", import.meta.url));

Deno.test("probeImage reads formats and sizes from headers; decodeImage agrees", async () => {
  const expected = [["jpeg", 40, 14], ["jpeg", 48, 16], ["png", 36, 12], ["png", 30, 12], ["png", 64, 16]];
  const r = await openLmdb(PY_LMDB);
  try {
    for (let i = 1; i <= r.size; i++) {
      const s = r.read(i);
      assert.ok(s.ok);
      const p = probeImage(s.sample.image);
      assert.deepEqual([p.format, p.width, p.height], expected[i - 1]);
      const img = await decodeImage(s.sample.image);
      assert.deepEqual([img.width, img.height], [p.width, p.height]);
    }
  } finally {
    await r.close();
  }
  assert.equal(probeImage(new Uint8Array([1, 2, 3])).format, "unknown");
  await assert.rejects(decodeImage(new Uint8Array([0xff, 0xd8, 0xff, 0x00])), ImageDecodeError);
  await assert.rejects(decodeImage(new Uint8Array([1, 2, 3])), /undecodable image \(unknown format, 3 bytes\)/);
});

Deno.test("seeded random numbers are reproducible", () => {
  const a = new Rng(hashSeed(1, "x", 2 ** 40)), b = new Rng(hashSeed(1, "x", 2 ** 40));
  const xs = Array.from({ length: 100 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 100 }, () => b.next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.notEqual(hashSeed(1, 2), hashSeed(2, 1));
  assert.notEqual(hashSeed(2 ** 33), hashSeed(0));
  const r = new Rng(5);
  for (let i = 0; i < 200; i++) {
    const s = r.sym(10), t = r.asym(10), k = r.int(3, 5);
    assert.ok(s >= -10 && s <= 10 && t >= 0 && t <= 10 && k >= 3 && k <= 5);
  }
});
