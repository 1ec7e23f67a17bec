import assert from "node:assert/strict";
import { join } from "node:path";
import { charsetFor } from "../data/charset.ts";
import { Rng } from "../data/random.ts";
import { mutateSpelling, type MutationEdit, numToModify, OFFICIAL_MUTATION } from "../data/spelling_mutation.ts";
import { buildCorpus } from "../data/text_corpus.ts";
import { SchemaError } from "../pipeline/schema.ts";
import { stageContext } from "../testing/stage_ctx.ts";
import { readCheckpoint } from "../training/checkpoint.ts";
import kind from "./pretrain_lm.ts";

Deno.test("spelling mutation: counts, operations, digits untouched, deterministic", () => {
  assert.equal(numToModify(1, 0.99, OFFICIAL_MUTATION), 0);
  assert.equal(numToModify(3, 0.99, OFFICIAL_MUTATION), 1);
  assert.equal(numToModify(6, 0.99, OFFICIAL_MUTATION), 3);
  assert.equal(numToModify(5, 0.9, OFFICIAL_MUTATION), 2);
  assert.equal(numToModify(5, 0.5, OFFICIAL_MUTATION), 0);
  const alphabet = charsetFor(36).chars;
  assert.equal(mutateSpelling("12a45", new Rng(1), alphabet, 25), "12a45", "mostly digits: unchanged");
  const ops = { replace: 0, insert: 0, delete: 0 };
  let changed = 0;
  const rng = new Rng(7);
  for (let i = 0; i < 4000; i++) {
    const edits: MutationEdit[] = [];
    const out = mutateSpelling("language", rng, alphabet, 25, OFFICIAL_MUTATION, edits);
    if (edits.length > 0) changed++;
    for (const e of edits) ops[e.op]++;
    const grow = edits.filter((e) => e.op === "insert").length - edits.filter((e) => e.op === "delete").length;
    assert.equal(out.length, 8 + grow);
  }
  // P(modify) = 0.3; among edits 70 % replace, 15 % insert, 15 % delete.
  assert.ok(Math.abs(changed / 4000 - 0.3) < 0.03, `changed ${changed}`);
  const total = ops.replace + ops.insert + ops.delete;
  assert.ok(
    Math.abs(ops.replace / total - 0.7) < 0.04 && Math.abs(ops.insert / total - 0.15) < 0.03,
    JSON.stringify(ops),
  );
  const a = mutateSpelling("sequence", new Rng(3), alphabet, 25),
    b = mutateSpelling("sequence", new Rng(3), alphabet, 25);
  assert.equal(a, b);
  // Truncated to max length.
  const always = { ...OFFICIAL_MUTATION, pn0: 0, pn1: 0, pn2: 0, pt0: 0, pt1: 1 };
  assert.equal(mutateSpelling("abcdefgh", new Rng(2), alphabet, 8, always).length, 8);
});

Deno.test("text corpus: normalised, too long dropped, held-out split by word hash", () => {
  const c = buildCorpus(["Hello,", "WORLD", "a".repeat(30), "...", "hello"], 36, 25, 0.5);
  assert.equal(c.read, 5);
  assert.equal(c.dropped, 2);
  const all = [...c.train, ...c.heldOut].sort();
  assert.deepEqual(all, ["hello", "hello", "world"]);
  // The same word always lands on the same side.
  assert.ok(!(c.train.includes("hello") && c.heldOut.includes("hello")));
});

Deno.test("pretrain_lm params: steps xor epochs, mutation order checked", () => {
  assert.throws(() => kind.params.parse({}, []), SchemaError);
  assert.throws(() => kind.params.parse({ steps: 1, mutation: { pn0: 0.9, pn1: 0.8 } }, []), SchemaError);
  const p = kind.params.parse({ steps: 1 }, []);
  assert.equal(p.architecture.preset, "full");
  assert.equal(p.mutation.pt0, 0.7);
});

Deno.test("pretrain_lm: trains BCN on a tiny text file and writes an abinet_language checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = join(dir, "words.txt");
    const words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma"];
    await Deno.writeTextFile(text, words.join(" ") + "\n" + words.map((w) => w.toUpperCase()).join("\n"));
    const raw = {
      architecture: { preset: "micro", d_model: 16, nhead: 2, ffn: 32, max_length: 8 },
      batch_size: 8,
      steps: 6,
      lr: 3e-3,
      held_out_fraction: 0.2,
      log_every: 2,
      checkpoint_every: 3,
      backend: "cpu",
    };
    const ctx = await stageContext(kind, dir, raw, { text });
    const result = await kind.run(ctx);
    const s = result!.summary as Record<string, number | null>;
    assert.equal(s.steps, 6);
    assert.ok(Number.isFinite(s.final_loss));
    assert.equal((s.train_words as number) + (s.held_out_words as number), 20);
    const out = join(dir, "outputs", "model");
    const ck = await readCheckpoint(join(out, "best.safetensors"));
    assert.equal(ck.meta.model_family, "abinet_language");
    assert.equal(ck.meta.model_config.d_model, 16);
    assert.ok(ck.file.tensors.has("proj.weight") && ck.file.tensors.has("model.layers.0.norm3.bias"));
    const curve = (await Deno.readTextFile(join(dir, "outputs", "curve"))).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(curve.at(-1).step, 6);
    assert.ok(ctx.logs.some((l) => l.includes("20 tokens")), ctx.logs.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
