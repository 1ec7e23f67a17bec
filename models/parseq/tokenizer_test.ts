import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { json, skipUnless, tensor } from "./test_fixtures.ts";
import { padTargets, specialIds, targetsFromBatch, Tokenizer } from "./tokenizer.ts";

Deno.test(
  { name: "parity: tokenizer vocabulary, encode and decode", ignore: skipUnless("tokenizer.json") },
  async () => {
    const fx = await json("tokenizer.json");
    const tok = new Tokenizer(fx.config.charset);
    assertEquals(tok.itos, fx.vocabulary.itos);
    assertEquals([tok.ids.eos, tok.ids.bos, tok.ids.pad], [
      fx.vocabulary.eos_id,
      fx.vocabulary.bos_id,
      fx.vocabulary.pad_id,
    ]);
    assertEquals(tok.numModelClasses, fx.vocabulary.num_model_classes);

    const enc = tok.encode(fx.encode.labels);
    const expected = await tensor(fx.encode.expected_ids);
    assertEquals([enc.batch, enc.length], expected.shape);
    assertEquals(Array.from(enc.ids), Array.from(expected.data));

    const dists = await tensor(fx.decode.token_dists);
    const dec = tok.decode(dists.data, dists.shape);
    assertEquals(dec.map((d) => d.text), fx.decode.expected_texts);
    for (let b = 0; b < dec.length; b++) {
      assertEquals(Float32Array.from(dec[b].probs), (await tensor(fx.decode.expected_token_probs[b])).data);
      const conf = Math.fround(dec[b].probs.reduce((a, p) => Math.fround(a * p), 1));
      if (Math.abs(conf - fx.decode.expected_confidence_prod[b]) > 1e-7) {
        throw new Error(`confidence ${b}: ${conf} vs ${fx.decode.expected_confidence_prod[b]}`);
      }
    }
    const raw = tok.decode(dists.data, dists.shape, true);
    assertEquals(raw.map((d) => tok.tokens(d.ids)), fx.decode.expected_raw_tokens);
    for (let b = 0; b < raw.length; b++) {
      assertEquals(Float32Array.from(raw[b].probs), (await tensor(fx.decode.expected_raw_probs[b])).data);
    }
  },
);

Deno.test("tokenizer: strata class ids map to PARSeq targets without a table", () => {
  // strata labels [B, 26]: characters then 0; lengths = characters + 1. numClasses 37 → BOS 37, PAD 38.
  const positions = 26;
  const labels = new Int32Array(2 * positions);
  labels.set([5, 6, 7], 0);
  labels.set([9], positions);
  const t = targetsFromBatch(labels, Int32Array.from([4, 2]), positions, 37);
  assertEquals(t.length, 5);
  assertEquals(Array.from(t.ids), [37, 5, 6, 7, 0, 37, 9, 0, 38, 38]);
  assertEquals(specialIds(95), { eos: 0, bos: 95, pad: 96 });
  assertEquals(Array.from(padTargets([[]], specialIds(37)).ids), [37, 0]);
});
