import assert from "node:assert/strict";
import { combineMetrics, editDistance, MetricAccumulator, scoreSample } from "./metrics.ts";

const close = (a: number, b: number, msg = "") => assert.ok(Math.abs(a - b) < 1e-12, `${msg} ${a} ≠ ${b}`);

Deno.test("editDistance", () => {
  assert.equal(editDistance("", ""), 0);
  assert.equal(editDistance("abc", ""), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("café", "cafe"), 1);
  assert.equal(editDistance("flaw", "lawn"), 2);
});

Deno.test("scoreSample: ABINet TextAccuracy definitions", () => {
  // Position-wise: "hello" vs "helo": h,e,l match, then l≠o → 3 (not the 4 an alignment would give).
  assert.deepEqual(scoreSample("hello", "helo"), {
    correct: false,
    correctChars: 3,
    gtChars: 5,
    oneMinusNed: 1 - 1 / 5,
  });
  assert.deepEqual(scoreSample("abc", "abc"), { correct: true, correctChars: 3, gtChars: 3, oneMinusNed: 1 });
  // Longer prediction: positions beyond the label do not count; NED divides by the longer string.
  assert.deepEqual(scoreSample("ab", "abxyz"), { correct: false, correctChars: 2, gtChars: 2, oneMinusNed: 1 - 3 / 5 });
  assert.deepEqual(scoreSample("ab", ""), { correct: false, correctChars: 0, gtChars: 2, oneMinusNed: 0 });
  assert.deepEqual(scoreSample("", ""), { correct: true, correctChars: 0, gtChars: 0, oneMinusNed: 1 });
});

Deno.test("MetricAccumulator: exact CCR / CWR / 1-NED / confidence / length on hand-made predictions", () => {
  const acc = new MetricAccumulator();
  acc.add("hello", "hello", 0.9); // correct, 5/5 chars, ned 0
  acc.add("world", "word", 0.5); //  w,o,r match, l≠d → 3/5, ed 1 / 5
  acc.add("abc", "xbc", 0.25); //   2/3, ed 1 / 3
  acc.add("test", "", 0.1); //      0/4, ed 4 / 4
  const m = acc.result();
  assert.equal(m.samples, 4);
  assert.equal(m.correct_words, 1);
  assert.equal(m.correct_chars, 5 + 3 + 2 + 0);
  assert.equal(m.total_chars, 5 + 5 + 3 + 4);
  close(m.word_accuracy, 0.25);
  close(m.cwr, 0.25);
  close(m.ccr, 10 / 17, "ccr");
  close(m.one_minus_ned, (1 + (1 - 1 / 5) + (1 - 1 / 3) + 0) / 4, "1-ned");
  close(m.mean_confidence, (0.9 + 0.5 + 0.25 + 0.1) / 4);
  close(m.mean_label_length, 17 / 4);
});

Deno.test("combineMetrics: weighted by data-set size", () => {
  const a = new MetricAccumulator();
  a.add("ab", "ab", 1);
  const b = new MetricAccumulator();
  b.add("abcd", "abxx", 0.5);
  b.add("ab", "xx", 0.5);
  b.add("a", "a", 0.5);
  const ma = a.result(), mb = b.result();
  const c = combineMetrics([ma, mb]);
  assert.equal(c.samples, 4);
  close(c.word_accuracy, 2 / 4);
  close(c.ccr, (1 * 1 + (3 / 7) * 3) / 4, "ccr weighted by samples");
  close(c.one_minus_ned, (1 + (0.5 + 0 + 1)) / 4);
  close(c.mean_confidence, (1 + 1.5) / 4);
  assert.equal(c.correct_chars, ma.correct_chars + mb.correct_chars);
  assert.equal(combineMetrics([]).samples, 0);
});
