/**
 * Summary statistics for reports: mean and sample standard deviation over
 * seeds (or any repeated runs).
 */

export interface Summary {
  /** Arithmetic mean of the finite values (NaN when there are none). */
  readonly mean: number;
  /** Sample standard deviation (n − 1 in the denominator); 0 when n = 1, NaN when n = 0. */
  readonly std: number;
  /** Number of finite values summarised. */
  readonly n: number;
  readonly min: number;
  readonly max: number;
  /** The finite values, in the order given. */
  readonly values: readonly number[];
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  // Kahan summation keeps long curves (thousands of steps) exact enough.
  let sum = 0;
  let carry = 0;
  for (const v of values) {
    const y = v - carry;
    const t = sum + y;
    carry = t - sum - y;
    sum = t;
  }
  return sum / values.length;
}

/** Sample standard deviation (Bessel-corrected), as papers report over seeds. 0 for one value, NaN for none. */
export function std(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  if (values.length === 1) return 0;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (values.length - 1));
}

/** Summarises the finite numbers among `values`; anything else (undefined, NaN, strings) is left out. */
export function summarize(values: readonly unknown[]): Summary {
  const finite = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  return {
    mean: mean(finite),
    std: std(finite),
    n: finite.length,
    min: finite.length ? Math.min(...finite) : NaN,
    max: finite.length ? Math.max(...finite) : NaN,
    values: finite,
  };
}

/** Trailing moving average over `window` points (window 1 returns a copy). */
export function movingAverage(values: readonly number[], window: number): number[] {
  const w = Math.max(1, Math.floor(window));
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= w) sum -= values[i - w];
    out.push(sum / Math.min(i + 1, w));
  }
  return out;
}
