import assert from "node:assert/strict";
import { mean, movingAverage, std, summarize } from "./stats.ts";

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

Deno.test("mean and sample std", () => {
  close(mean([1, 2, 3, 4]), 2.5);
  close(std([2, 4, 4, 4, 5, 5, 7, 9]), 2.138089935299395);
  assert.equal(std([0.5]), 0);
  assert.ok(Number.isNaN(mean([])));
  assert.ok(Number.isNaN(std([])));
});

Deno.test("summarize skips non-finite values and keeps order", () => {
  const s = summarize([0.8, undefined, Number.NaN, "x", 0.9, 0.7]);
  assert.equal(s.n, 3);
  assert.deepEqual(s.values, [0.8, 0.9, 0.7]);
  close(s.mean, 0.8);
  close(s.std, 0.1);
  assert.equal(s.min, 0.7);
  assert.equal(s.max, 0.9);
  assert.equal(summarize([]).n, 0);
});

Deno.test("moving average", () => {
  assert.deepEqual(movingAverage([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5]);
  assert.deepEqual(movingAverage([1, 2], 1), [1, 2]);
});
