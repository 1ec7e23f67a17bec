import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ABINET_AUGMENT, type AugmentParams } from "./augment.ts";
import type { Batch } from "./batch.ts";
import { createLmdb, openLmdb } from "./lmdb.ts";
import { openDataset } from "./loader.ts";
import { augmentOf, augmentSchema, imageSchema, imageSpecOf, labelSchema } from "./params.ts";

const PY_LMDB = fileURLToPath(new URL("../testdata/python_lmdb", import.meta.url));

async function collect(it: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

/** A 23-sample LMDB built from the Python fixture's images, plus one undecodable image (index 7). */
async function makeLmdb(dir: string): Promise<string> {
  const src = await openLmdb(PY_LMDB);
  const path = join(dir, "train");
  const w = await createLmdb(path);
  for (let i = 0; i < 24; i++) {
    const s = src.read((i % src.size) + 1);
    assert.ok(s.ok);
    if (i === 6) w.add(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), "broken");
    else w.add(s.sample.image, `${s.sample.label}${i}`);
  }
  await src.close();
  await w.commit();
  return path;
}

Deno.test("eval mode: all samples in order, last partial batch kept, labels encoded", async () => {
  const ds = await openDataset(PY_LMDB);
  try {
    assert.equal(ds.size, 5);
    const batches = await collect(ds.batches({ mode: "eval", batchSize: 2 }));
    assert.deepEqual(batches.map((b) => b.shape), [[2, 32, 128, 3], [2, 32, 128, 3], [1, 32, 128, 3]]);
    assert.deepEqual(batches.flatMap((b) => b.indices), [1, 2, 3, 4, 5]);
    assert.deepEqual(batches.flatMap((b) => b.texts), ["grey", "rgb", "cafe", "42", "longerword"]);
    const b0 = batches[0];
    assert.equal(b0.labels.length, 2 * 26);
    assert.deepEqual([...b0.labels.slice(0, 5)], [7, 18, 5, 25, 0]); // g r e y EOS
    assert.deepEqual([...b0.lengths], [5, 4]);
    assert.ok(b0.images.every(Number.isFinite));
    const s = ds.summary();
    assert.equal(s.usable, 5);
    assert.deepEqual((s.sources[0].labels as { changed: Record<string, number> }).changed, {
      case_folded: 3,
      unicode_normalized: 1,
      chars_removed: 1,
    });
  } finally {
    await ds.close();
  }
});

Deno.test("unit normalisation and one channel", async () => {
  const ds = await openDataset(PY_LMDB, { image: { channels: 1, normalize: "unit", height: 16, width: 48 } });
  try {
    const [b] = await collect(ds.batches({ mode: "eval", batchSize: 8 }));
    assert.deepEqual(b.shape, [5, 16, 48, 1]);
    assert.equal(b.images.length, 5 * 16 * 48);
    assert.ok(b.images.every((v) => v >= 0 && v <= 1));
    // The grey word image: light background, dark text.
    const first = b.images.slice(0, 16 * 48);
    assert.ok(Math.max(...first) > 0.8 && Math.min(...first) < 0.3);
    // RGBA over white: the half-transparent white background stays light.
    const third = b.images.slice(2 * 16 * 48, 3 * 16 * 48);
    assert.ok(third[0] > 0.9, `corner of the RGBA image is ${third[0]}`);
  } finally {
    await ds.close();
  }
});

Deno.test("label protocol and max length: dropped and changed samples are counted", async () => {
  const ds = await openDataset(PY_LMDB, { protocol: 94, maxLength: 5 });
  try {
    assert.deepEqual(ds.texts, ["grey", "RGB", "Cafe", "42"]);
    const s = ds.summary();
    assert.deepEqual((s.sources[0].labels as { dropped: Record<string, number> }).dropped, { too_long: 1 });
    assert.equal(s.dropped, 1);
  } finally {
    await ds.close();
  }
});

Deno.test("train mode: same seed → same batches; skip policy counts the undecodable image", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-loader-test-" });
  try {
    const path = await makeLmdb(dir);
    await assert.rejects(
      (async () => {
        const strict = await openDataset(path);
        try {
          await collect(strict.batches({ mode: "eval", batchSize: 8 }));
        } finally {
          await strict.close();
        }
      })(),
      /sample 7: undecodable image .*\(undecodable_image\)/,
    );

    const ds = await openDataset(path, { policy: "skip" });
    const augment: AugmentParams = {
      ...ABINET_AUGMENT,
      geometry: { ...ABINET_AUGMENT.geometry, p: 0.7 },
      deterioration: { ...ABINET_AUGMENT.deterioration, p: 0.7 },
      color_jitter: { ...ABINET_AUGMENT.color_jitter, p: 0.7 },
    };
    try {
      const run = (seed: number, prefetch: number) =>
        collect(ds.batches({ mode: "train", batchSize: 5, seed, augment, prefetch }));
      const [a, b, c] = [await run(1, 2), await run(1, 0), await run(2, 3)];
      // 24 samples, one undecodable → 23 → 4 full batches of 5 (the partial one is dropped).
      assert.equal(a.length, 4);
      assert.ok(a.every((x) => x.shape[0] === 5));
      assert.ok(!a.flatMap((x) => x.indices).includes(7));
      for (let i = 0; i < a.length; i++) {
        assert.deepEqual(a[i].indices, b[i].indices);
        assert.deepEqual(a[i].images, b[i].images);
        assert.deepEqual(a[i].labels, b[i].labels);
        assert.ok(a[i].images.every(Number.isFinite));
      }
      assert.notDeepEqual(a.map((x) => x.indices), c.map((x) => x.indices));
      const bad = ds.summary().sources[0].bad as { counts: Record<string, number>; examples: string[] };
      assert.equal(bad.counts.undecodable_image, 1, "counted once even when met again");
      assert.match(bad.examples[0], /sample 7/);

      // Augmentation changes pixels; eval mode never augments.
      const plain = await collect(ds.batches({ mode: "train", batchSize: 5, seed: 1 }));
      assert.deepEqual(plain[0].indices, a[0].indices);
      assert.notDeepEqual(plain[0].images, a[0].images);
      const e1 = await collect(ds.batches({ mode: "eval", batchSize: 23, augment }));
      const e2 = await collect(ds.batches({ mode: "eval", batchSize: 23 }));
      assert.deepEqual(e1[0].images, e2[0].images);

      // stream: epochs follow one another with different orders.
      const it = ds.stream({ batchSize: 5, seed: 3 });
      const seen: number[][] = [];
      for (let i = 0; i < 8; i++) seen.push((await it.next()).value!.indices);
      await it.return?.(undefined);
      assert.notDeepEqual(seen.slice(0, 4), seen.slice(4, 8));
    } finally {
      await ds.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("params schemas give the ABINet defaults", () => {
  const aug = augmentSchema.parse(undefined, ["augment"]);
  assert.deepEqual(augmentOf(aug), ABINET_AUGMENT);
  assert.equal(augmentOf(augmentSchema.parse({ enabled: false }, [])), undefined);
  assert.deepEqual(imageSpecOf(imageSchema.parse({}, [])), {
    height: 32,
    width: 128,
    channels: 3,
    normalize: "imagenet",
  });
  assert.deepEqual(labelSchema.parse({ protocol: 62 }, []), { protocol: 62, max_length: 25, unsupported: "remove" });
  assert.throws(() => labelSchema.parse({ protocol: 37 }, ["labels"]), /labels\.protocol: expected one of 36, 62, 94/);
  assert.throws(() => imageSpecOf(imageSchema.parse({ channels: 2 }, [])), /1 or 3/);
});

Deno.test("several LMDBs read as one data set", async () => {
  const ds = await openDataset([PY_LMDB, PY_LMDB], { protocol: 62 });
  try {
    assert.equal(ds.size, 10);
    assert.equal(ds.paths.length, 2);
    const [b] = await collect(ds.batches({ mode: "eval", batchSize: 10 }));
    assert.deepEqual(b.sources, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    assert.deepEqual(b.indices, [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
    assert.deepEqual(b.images.slice(0, 4096 * 3), b.images.slice(5 * 4096 * 3, 6 * 4096 * 3));
    const s = ds.summary();
    assert.equal(s.stored, 10);
    assert.equal(s.sources.length, 2);
  } finally {
    await ds.close();
  }
});

Deno.test("lazy scan: labels checked as met; eval batches equal the eager scan's", async () => {
  const eager = await openDataset(PY_LMDB, { protocol: 94, maxLength: 5 });
  const lazy = await openDataset(PY_LMDB, { protocol: 94, maxLength: 5, scan: "lazy" });
  try {
    assert.equal(eager.scan, "eager");
    assert.equal(lazy.scan, "lazy");
    assert.equal(lazy.size, 5);
    assert.deepEqual(lazy.texts, []);
    const [a] = await collect(eager.batches({ mode: "eval", batchSize: 8 }));
    const [b] = await collect(lazy.batches({ mode: "eval", batchSize: 8 }));
    assert.deepEqual(b.texts, a.texts);
    assert.deepEqual(b.indices, a.indices);
    assert.deepEqual(b.images, a.images);
    await collect(lazy.batches({ mode: "train", batchSize: 2, seed: 1 }));
    const s = lazy.summary();
    assert.equal(s.scan, "lazy");
    assert.equal(s.usable, 4);
    assert.deepEqual((s.sources[0].labels as { dropped: Record<string, number> }).dropped, { too_long: 1 });
    assert.equal((s.sources[0].labels as { kept: number }).kept, 4, "each label counted once");
  } finally {
    await eager.close();
    await lazy.close();
  }
});
