/**
 * ABINet's spelling-mutation noise for pretraining the language model on text alone (`SpellingMutation` in
 * its `pretrain_language_model` setting), written from its description:
 *
 * - texts whose share of digits is ≥ `digit_ratio` (0.5) are left alone;
 * - how many characters to modify: 0 with probability pn0, 1 up to pn1, 2 up to pn2, else 3 — none for a
 *   1-character text, at most 1 for 2–4 characters, at most ⌊length/2⌋ otherwise;
 * - which ones: a random subset of the positions;
 * - each chosen character is replaced by a random charset letter (probability pt0), gets a random letter
 *   inserted before it (up to pt1), or is deleted (the rest);
 * - the result is cut to `max_length`; an empty result falls back to the original text.
 */
import type { Rng } from "./random.ts";

export interface MutationParams {
  /** Cumulative probabilities of modifying 0, ≤ 1, ≤ 2 characters (else 3). */
  pn0: number;
  pn1: number;
  pn2: number;
  /** Cumulative probabilities of replace (pt0) and insert (pt1); delete is the rest. */
  pt0: number;
  pt1: number;
  digit_ratio: number;
}

export const OFFICIAL_MUTATION: MutationParams = {
  pn0: 0.7,
  pn1: 0.85,
  pn2: 0.95,
  pt0: 0.7,
  pt1: 0.85,
  digit_ratio: 0.5,
};

export interface MutationEdit {
  op: "replace" | "insert" | "delete";
  /** Position in the original text. */
  at: number;
}

/** How many characters to modify (the length caps applied). */
export function numToModify(length: number, u: number, p: MutationParams): number {
  let n = u < p.pn0 ? 0 : u < p.pn1 ? 1 : u < p.pn2 ? 2 : 3;
  if (length <= 1) n = 0;
  else if (length <= 4) n = Math.min(n, 1);
  else n = Math.min(n, Math.floor(length / 2));
  return n;
}

/**
 * One mutated text. `alphabet` holds the characters a replacement or insertion draws from (the charset);
 * `edits` (optional) receives what was done, for tests and logs.
 */
export function mutateSpelling(
  text: string,
  rng: Rng,
  alphabet: string,
  maxLength: number,
  p: MutationParams = OFFICIAL_MUTATION,
  edits?: MutationEdit[],
): string {
  const chars = Array.from(text);
  if (chars.length === 0) return text;
  const digits = chars.filter((c) => c >= "0" && c <= "9").length;
  if (digits / chars.length >= p.digit_ratio) return text;
  const n = numToModify(chars.length, rng.next(), p);
  if (n <= 0) return text;
  // A random n-subset of the positions (partial Fisher–Yates).
  const order = chars.map((_, i) => i);
  for (let i = 0; i < n; i++) {
    const j = rng.int(i, order.length - 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const chosen = new Set(order.slice(0, n));
  const letters = Array.from(alphabet);
  const pick = () => letters[rng.int(0, letters.length - 1)];
  const out: string[] = [];
  chars.forEach((c, i) => {
    if (!chosen.has(i)) {
      out.push(c);
      return;
    }
    const u = rng.next();
    if (u < p.pt0) {
      out.push(pick());
      edits?.push({ op: "replace", at: i });
    } else if (u < p.pt1) {
      out.push(pick(), c);
      edits?.push({ op: "insert", at: i });
    } else {
      edits?.push({ op: "delete", at: i });
    }
  });
  const result = out.slice(0, maxLength).join("");
  return result.length >= 1 ? result : text;
}
