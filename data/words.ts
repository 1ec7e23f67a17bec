/**
 * Texts for synthetic word images: English words (npm
 * an-array-of-english-words), random alphanumeric strings and numbers,
 * mixed by ratio, with case variants; and a hash partition of the
 * vocabulary so that train and test splits can be made disjoint.
 */
import { fileURLToPath } from "node:url";
import { hashSeed, type Rng } from "./random.ts";

export interface TextParams {
  /** Relative weights of dictionary words, random alphanumeric strings and numbers. */
  words: number;
  random: number;
  numbers: number;
  min_length: number;
  max_length: number;
  /** Relative weights of lower, UPPER and Title case for dictionary words. */
  lower: number;
  upper: number;
  title: number;
}

export interface VocabularyParams {
  /** `all`: no partition; `train` / `test`: only texts on that side of the partition. */
  split: "all" | "train" | "test";
  /** Share of the vocabulary on the test side. */
  test_fraction: number;
}

export const DEFAULT_TEXT: TextParams = {
  words: 0.7,
  random: 0.15,
  numbers: 0.15,
  min_length: 1,
  max_length: 16,
  lower: 0.4,
  upper: 0.3,
  title: 0.3,
};

let dictionary: string[] | undefined;

/** The English word list (lowercase a–z words), loaded once. */
export function englishWords(): string[] {
  if (!dictionary) {
    const path = fileURLToPath(new URL("../node_modules/an-array-of-english-words/index.json", import.meta.url));
    const all = JSON.parse(Deno.readTextFileSync(path)) as string[];
    dictionary = all.filter((w) => /^[a-z]+$/.test(w));
  }
  return dictionary;
}

/** Which side of the vocabulary partition a text is on (case-insensitive, independent of any seed). */
export function isTestText(text: string, testFraction: number): boolean {
  return hashSeed("strata-vocabulary-v1", text.toLowerCase()) / 4294967296 < testFraction;
}

const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

export type TextKind = "word" | "random" | "number";

export class TextSource {
  readonly #words: string[];

  constructor(readonly text: TextParams, readonly vocabulary: VocabularyParams) {
    if (text.min_length < 1 || text.max_length < text.min_length) {
      throw new Error(`text lengths: need 1 ≤ min_length ≤ max_length, got ${text.min_length}..${text.max_length}`);
    }
    const inSplit = (w: string) => this.#accept(w);
    this.#words = text.words > 0
      ? englishWords().filter((w) => w.length >= text.min_length && w.length <= text.max_length && inSplit(w))
      : [];
    if (text.words > 0 && this.#words.length === 0) {
      throw new Error("no dictionary words fit the length range and split");
    }
    if (text.words + text.random + text.numbers <= 0) throw new Error("text: words + random + numbers must be > 0");
  }

  /** Dictionary words available after the length and split filters. */
  get vocabularySize(): number {
    return this.#words.length;
  }

  #accept(t: string): boolean {
    const v = this.vocabulary;
    if (v.split === "all") return true;
    return isTestText(t, v.test_fraction) === (v.split === "test");
  }

  next(rng: Rng): { text: string; kind: TextKind } {
    const t = this.text;
    const r = rng.next() * (t.words + t.random + t.numbers);
    const kind: TextKind = r < t.words ? "word" : r < t.words + t.random ? "random" : "number";
    if (kind === "word") {
      const w = this.#words[Math.floor(rng.next() * this.#words.length)];
      const c = rng.next() * (t.lower + t.upper + t.title);
      const text = c < t.lower ? w : c < t.lower + t.upper ? w.toUpperCase() : w[0].toUpperCase() + w.slice(1);
      return { text, kind };
    }
    const maxLen = Math.min(t.max_length, kind === "number" ? 10 : 12);
    const minLen = Math.min(t.min_length, maxLen);
    for (let attempt = 0; attempt < 10000; attempt++) {
      const n = rng.int(minLen, maxLen);
      let s = "";
      if (kind === "random") {
        for (let i = 0; i < n; i++) s += ALNUM[Math.floor(rng.next() * ALNUM.length)];
      } else {
        s += n > 1 ? String(rng.int(1, 9)) : String(rng.int(0, 9));
        for (let i = 1; i < n; i++) s += String(rng.int(0, 9));
      }
      if (this.#accept(s)) return { text: s, kind };
    }
    throw new Error(`cannot draw a ${kind} text on the ${this.vocabulary.split} side of the vocabulary`);
  }
}
