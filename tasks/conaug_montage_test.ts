import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeImage } from "../data/image.ts";
import { synthesize } from "../data/synth_run.ts";
import { stageContext } from "../testing/stage_ctx.ts";
import { synthParams } from "./synth.ts";
import kind from "./conaug_montage.ts";

Deno.test("conaug_montage: original and two ConAug views per row, each view's label two training labels joined", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-montage-" });
  try {
    const lmdb = join(dir, "train.lmdb");
    await synthesize(synthParams.parse({ count: 12, seed: 3, montage: 0 }, []), lmdb, undefined);
    const ctx = await stageContext(kind, dir, {
      data: { image: { height: 32, width: 64, channels: 1 }, labels: { max_length: 25 }, augment: { enabled: false } },
      count: 4,
      seed: 2,
    }, { train: lmdb });
    const result = await kind.run(ctx);
    const rows = (result!.summary as { rows: { original: string; views: string[] }[] }).rows;
    assert.equal(rows.length, 4);
    const originals = rows.map((r) => r.original);
    for (const r of rows) {
      assert.equal(r.views.length, 2);
      // Each view is this sample's label and another sample's, in one order or the other.
      for (const v of r.views) {
        assert.ok(
          originals.some((o) => v === r.original + o || v === o + r.original),
          `${v} is not ${r.original} joined with another label of ${originals.join(", ")}`,
        );
      }
    }
    const png = await decodeImage(await Deno.readFile(ctx.output("montage")));
    if (Deno.env.get("STRATA_KEEP_MONTAGE")) await Deno.copyFile(ctx.output("montage"), "/tmp/montage.png");
    assert.equal(png.width, 3 * (64 * 2 * 2 + 8) + 8);
    assert.equal(png.height, 20 + 4 * (32 * 2 + 18 + 8) + 8);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
