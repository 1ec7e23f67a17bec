import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { json, replay, skipUnless, tensor } from "./test_fixtures.ts";
import {
  allPermutations,
  attentionMasks,
  causalMask,
  clozeMask,
  generatePermutations,
  maxGenPerms,
  permutationRandom,
} from "./permutations.ts";
import { padTargets, specialIds } from "./tokenizer.ts";

const FILE = "permutations.json";

Deno.test({ name: "parity: gen_tgt_perms and generate_attn_masks (all cases)", ignore: skipUnless(FILE) }, async () => {
  const fx = await json(FILE);
  for (const c of fx.cases) {
    const o = { permNum: c.config.perm_num, permForward: c.config.perm_forward, permMirrored: c.config.perm_mirrored };
    assertEquals(maxGenPerms(o), c.config.max_gen_perms, c.name);
    const perms = generatePermutations(c.max_num_chars, o, replay(c.random_draws));
    const expected = await tensor(c.expected_perms);
    assertEquals(perms.flat(), Array.from(expected.data), c.name);
    assertEquals(perms.length, c.expected_masks.length, c.name);
    for (let i = 0; i < perms.length; i++) {
      const m = attentionMasks(perms[i]);
      assertEquals(perms[i], c.expected_masks[i].perm);
      assertEquals(Array.from(m.content), c.expected_masks[i].content_mask.data, `${c.name} perm ${i} content`);
      assertEquals(Array.from(m.query), c.expected_masks[i].query_mask.data, `${c.name} perm ${i} query`);
    }
    // training_step tensors: tgt_in / tgt_out / padding from the tokenised labels.
    const ids = specialIds(37);
    const tgt = await tensor(c.tgt);
    const [b, len] = tgt.shape;
    const ts = c.training_step_tensors;
    const tgtIn: number[] = [], tgtOut: number[] = [], pad: number[] = [];
    for (let r = 0; r < b; r++) {
      for (let t = 0; t < len - 1; t++) {
        const v = tgt.data[r * len + t];
        tgtIn.push(v);
        tgtOut.push(tgt.data[r * len + t + 1]);
        pad.push(v === ids.pad || v === ids.eos ? 1 : 0);
      }
    }
    assertEquals(tgtIn, ts.tgt_in.data);
    assertEquals(tgtOut, ts.tgt_out.data);
    assertEquals(pad, ts.tgt_padding_mask.data);
  }
  const ar = fx.ar_decoding_masks;
  assertEquals(Array.from(causalMask(ar.num_steps)), ar.tgt_mask_and_query_mask.data);
  // strhub's refinement query mask: the causal mask with triu(·, 2) cleared.
  assertEquals(Array.from(clozeMask(ar.num_steps)), ar.refinement_query_mask.data);
});

Deno.test("permutations: shapes, mirroring and the reverse row for every n", () => {
  let s = 1;
  const random = () => ((s = (s * 16807) % 2147483647) - 1) / 2147483646;
  const rng = permutationRandom(random);
  for (const mirrored of [true, false]) {
    for (let n = 1; n <= 25; n++) {
      const perms = generatePermutations(n, { permNum: 6, permForward: true, permMirrored: mirrored }, rng);
      for (const p of perms) {
        assertEquals(p.length, n + 2);
        assertEquals([...p].sort((a, b) => a - b), Array.from({ length: n + 2 }, (_, i) => i));
        assertEquals(p[0], 0);
      }
      if (n === 1) {
        assertEquals(perms, [[0, 1, 2]]);
        continue;
      }
      assertEquals(perms[0], Array.from({ length: n + 2 }, (_, i) => i));
      assertEquals(perms[1], [0, ...Array.from({ length: n + 1 }, (_, i) => n + 1 - i)]);
      if (n >= 4) assertEquals(perms.length, 6, `n ${n}`);
      if (mirrored) {
        for (let i = 2; i + 1 < perms.length; i += 2) {
          assertEquals(perms[i + 1].slice(1, -1), [...perms[i].slice(1, -1)].reverse());
        }
      }
      // Without replacement below 5 characters: no row repeats.
      if (n < 5) assertEquals(new Set(perms.map((p) => p.join())).size, perms.length);
    }
  }
  assertEquals(allPermutations(3), [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]);
});

Deno.test("permutations: the forward permutation's masks are causal", () => {
  const n = 4;
  const m = attentionMasks([0, 1, 2, 3, 4, 5]);
  const causal = causalMask(n + 1);
  assertEquals(Array.from(m.content), Array.from(causal));
  // query i (predicting position i + 1) sees content 0..i.
  for (let i = 0; i <= n; i++) {
    for (let j = 0; j <= n; j++) ok(m.query[i * (n + 1) + j] === (j > i ? 1 : 0));
  }
  assertEquals(Array.from(padTargets([[1, 2]], specialIds(5)).ids), [5, 1, 2, 0]);
});
