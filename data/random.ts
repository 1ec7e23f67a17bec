/**
 * Small seeded random numbers for data code: a 32-bit hash to derive
 * per-sample seeds (so results do not depend on decode order or
 * concurrency) and a fast PRNG (mulberry32) with the distributions that
 * the augmentations and the renderer need.
 */

/** Mixes integers (and strings) into a 32-bit seed; same inputs → same seed. */
export function hashSeed(...parts: (number | string)[]): number {
  let h = 0x811c9dc5 | 0;
  const mix = (x: number) => {
    h = Math.imul(h ^ x, 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
  };
  for (const p of parts) {
    if (typeof p === "string") {
      for (let i = 0; i < p.length; i++) mix(p.charCodeAt(i));
      mix(p.length + 0x9e3779b9);
    } else {
      // Integers up to 2^53 survive: low and high words.
      mix(p | 0);
      mix(Math.floor(p / 4294967296) | 0);
    }
  }
  return h >>> 0;
}

export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** ABINet's `sample_sym`: (Beta(4, 4) − 0.5) · 2 · magnitude, in [−magnitude, magnitude]. */
  sym(magnitude: number): number {
    // Beta(4, 4) is the 4th smallest of 7 uniforms.
    const u: number[] = [];
    for (let i = 0; i < 7; i++) u.push(this.next());
    u.sort((a, b) => a - b);
    return (u[3] - 0.5) * 2 * magnitude;
  }

  /** ABINet's `sample_asym`: Beta(1, 4) · magnitude, in [0, magnitude], skewed to 0. */
  asym(magnitude: number): number {
    return (1 - Math.pow(1 - this.next(), 0.25)) * magnitude;
  }

  /** Fisher–Yates in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}
