import assert from "node:assert/strict";
import { decodeLogits, ptLengths } from "./decode.ts";

const charset = { decode: (ix: ArrayLike<number>) => Array.from(ix, (i) => " abc"[i]).join("") };

Deno.test("decode: stops at the first EOS, confidence includes the EOS", () => {
  // B=2, T=4, C=4. Row 0: a, b, EOS, c. Row 1: no EOS.
  const L = (c: number) => [0, 1, 2, 3].map((k) => (k === c ? 2 : 0));
  const logits = [...L(1), ...L(2), ...L(0), ...L(3), ...L(3), ...L(3), ...L(1), ...L(2)];
  const [a, b] = decodeLogits(logits, [2, 4, 4], charset);
  const p = Math.exp(2) / (Math.exp(2) + 3);
  assert.equal(a.text, "ab");
  assert.deepEqual(a.indices, [1, 2]);
  assert.equal(a.ptLength, 3);
  assert.ok(Math.abs(a.confidence - p ** 3) < 1e-12);
  assert.equal(b.text, "ccab");
  assert.equal(b.ptLength, 0); // no EOS → 0, as ABINet's _get_length at the pinned commit
  assert.ok(Math.abs(b.confidence - p ** 4) < 1e-12);
});

Deno.test("decode: ptLengths", () => {
  assert.deepEqual([...ptLengths([3, 0, 0, 1, 2, 3], 2, 3)], [2, 0]);
  assert.deepEqual([...ptLengths([0, 5], 1, 2)], [1]);
});
