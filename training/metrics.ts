/**
 * Text-recognition metrics, pure TypeScript (no tfjs).
 *
 * Definitions follow ABINet's `TextAccuracy` callback: per sample, CWR counts exact matches; CCR counts the
 * positions i < min(|gt|, |pred|) where pred[i] = gt[i], summed over samples and divided by the total number of
 * ground-truth characters; NED is edit distance / max(|gt|, |pred|) (0 when both are empty) and we report its
 * complement, 1-NED, averaged over samples. Strings are compared as Unicode code points.
 */

/** Levenshtein distance over code points. */
export function editDistance(a: string, b: string): number {
  const x = Array.from(a), y = Array.from(b);
  if (x.length === 0) return y.length;
  if (y.length === 0) return x.length;
  const row = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= y.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (x[i - 1] === y[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[y.length];
}

export interface TextMetrics {
  /** Number of samples. */
  samples: number;
  /** Exact-match rate (= CWR). */
  word_accuracy: number;
  /** Correct word rate, ABINet's `cwr` (= word accuracy). */
  cwr: number;
  /** Correct character rate, ABINet's `ccr`: position-wise correct characters / ground-truth characters. */
  ccr: number;
  /** Mean of 1 − edit distance / max(|gt|, |pred|). */
  one_minus_ned: number;
  mean_confidence: number;
  /** Mean ground-truth length in characters. */
  mean_label_length: number;
  correct_words: number;
  correct_chars: number;
  total_chars: number;
}

export interface SampleScore {
  correct: boolean;
  correctChars: number;
  gtChars: number;
  oneMinusNed: number;
}

export function scoreSample(label: string, prediction: string): SampleScore {
  const gt = Array.from(label), pt = Array.from(prediction);
  let correctChars = 0;
  for (let i = 0; i < Math.min(gt.length, pt.length); i++) if (gt[i] === pt[i]) correctChars++;
  const longest = Math.max(gt.length, pt.length);
  const ned = longest === 0 ? 0 : editDistance(label, prediction) / longest;
  return { correct: label === prediction, correctChars, gtChars: gt.length, oneMinusNed: 1 - ned };
}

/** Accumulates samples of one data set. */
export class MetricAccumulator {
  #n = 0;
  #words = 0;
  #chars = 0;
  #gtChars = 0;
  #ned = 0;
  #confidence = 0;

  add(label: string, prediction: string, confidence: number): SampleScore {
    const s = scoreSample(label, prediction);
    this.#n++;
    if (s.correct) this.#words++;
    this.#chars += s.correctChars;
    this.#gtChars += s.gtChars;
    this.#ned += s.oneMinusNed;
    this.#confidence += confidence;
    return s;
  }

  result(): TextMetrics {
    const n = this.#n;
    const div = (a: number, b: number) => (b === 0 ? 0 : a / b);
    return {
      samples: n,
      word_accuracy: div(this.#words, n),
      cwr: div(this.#words, n),
      ccr: div(this.#chars, this.#gtChars),
      one_minus_ned: div(this.#ned, n),
      mean_confidence: div(this.#confidence, n),
      mean_label_length: div(this.#gtChars, n),
      correct_words: this.#words,
      correct_chars: this.#chars,
      total_chars: this.#gtChars,
    };
  }
}

/**
 * Combines data sets weighted by their sample counts: every rate is Σ rate_i · n_i / Σ n_i (for word accuracy,
 * 1-NED, confidence and label length that equals pooling the samples; for CCR it weights each data set's CCR by
 * its size, not by its character count). Counts are summed.
 */
export function combineMetrics(parts: readonly TextMetrics[]): TextMetrics {
  const n = parts.reduce((a, p) => a + p.samples, 0);
  const w = (key: keyof TextMetrics) => n === 0 ? 0 : parts.reduce((a, p) => a + p[key] * p.samples, 0) / n;
  const sum = (key: keyof TextMetrics) => parts.reduce((a, p) => a + p[key], 0);
  return {
    samples: n,
    word_accuracy: w("word_accuracy"),
    cwr: w("cwr"),
    ccr: w("ccr"),
    one_minus_ned: w("one_minus_ned"),
    mean_confidence: w("mean_confidence"),
    mean_label_length: w("mean_label_length"),
    correct_words: sum("correct_words"),
    correct_chars: sum("correct_chars"),
    total_chars: sum("total_chars"),
  };
}
