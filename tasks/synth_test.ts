import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { openDataset } from "../data/loader.ts";
import { Rng } from "../data/random.ts";
import { DEFAULT_TEXT, isTestText, TextSource } from "../data/words.ts";
import { stageContext } from "../testing/stage_ctx.ts";
import kind from "./synth.ts";

const sha = async (path: string) => createHash("sha256").update(await Deno.readFile(path)).digest("hex");

Deno.test("synth: same params and seed → identical bytes; readable by the loader", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-synth-test-" });
  try {
    const run = async (name: string, params: Record<string, unknown>) => {
      const ctx = await stageContext(kind, join(dir, name), params);
      const result = await kind.run(ctx);
      return {
        ctx,
        result,
        lmdb: await sha(join(ctx.output("lmdb"), "data.mdb")),
        montage: await sha(ctx.output("montage")),
      };
    };
    const a = await run("a", { count: 40, seed: 7, montage: 8 });
    const b = await run("b", { count: 40, seed: 7, montage: 8 });
    const c = await run("c", { count: 40, seed: 8, montage: 8 });
    assert.equal(a.lmdb, b.lmdb);
    assert.equal(a.montage, b.montage);
    assert.notEqual(a.lmdb, c.lmdb);
    assert.equal(a.result!.summary!.count, 40);
    // The montage is a PNG.
    const png = await Deno.readFile(a.ctx.output("montage"));
    assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47]);

    const ds = await openDataset(a.ctx.output("lmdb"), { protocol: 62 });
    try {
      assert.equal(ds.size, 40, "every label fits protocol 62");
      let n = 0;
      for await (const batch of ds.batches({ mode: "eval", batchSize: 16 })) n += batch.shape[0];
      assert.equal(n, 40, "every image decodes");
      assert.ok(ds.texts.every((t) => /^[A-Za-z0-9]{1,16}$/.test(t)));
      assert.equal(
        (ds.summary().sources[0].labels as { changed: Record<string, number> }).changed.chars_removed,
        undefined,
      );
    } finally {
      await ds.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("synth: train and test vocabularies are disjoint", () => {
  const train = new TextSource(DEFAULT_TEXT, { split: "train", test_fraction: 0.2 });
  const test = new TextSource(DEFAULT_TEXT, { split: "test", test_fraction: 0.2 });
  const draw = (src: TextSource, seed: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: 500 }, () => src.next(rng).text.toLowerCase());
  };
  const a = new Set(draw(train, 1)), b = new Set(draw(test, 2));
  for (const t of b) assert.ok(!a.has(t), `${t} in both splits`);
  assert.ok([...b].every((t) => isTestText(t, 0.2)));
  assert.ok(test.vocabularySize > 0.1 * train.vocabularySize && test.vocabularySize < 0.4 * train.vocabularySize);
  const kinds = new Set(Array.from({ length: 200 }, (_, i) => train.next(new Rng(i)).kind));
  assert.deepEqual([...kinds].sort(), ["number", "random", "word"]);
});

Deno.test("synth: params are validated", () => {
  assert.throws(() => kind.params.parse({ count: 0 }, []), /count: expected integer ≥ 1/);
  assert.throws(() => kind.params.parse({ render: { blurr_p: 1 } }, []), /did you mean "blur_p"/);
  assert.throws(() => kind.params.parse({ vocabulary: { split: "val" } }, []), /vocabulary\.split/);
});
