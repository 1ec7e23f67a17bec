/**
 * Small, seedable, serialisable random sources. Everything random in training
 * derives from the one `seed` param through `deriveSeed`, so that a run
 * resumed at step k sees the same randomness as an uninterrupted one.
 */
import { mix32 } from "../models/nn/rng.ts";

/** 32-bit hash of numbers and strings (FNV-1a over their text, then a murmur-style finaliser). */
export function deriveSeed(...parts: (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(parts.map(String).join("\u0000"))) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return mix32(h);
}

/** mulberry32: uniform [0, 1) numbers from a 32-bit state; `state` can be saved and restored. */
export class Rng {
  constructor(public state: number) {
    this.state >>>= 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** A function view, for APIs that take `() => number`. */
  fn(): () => number {
    return () => this.next();
  }
}
