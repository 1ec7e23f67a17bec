/**
 * Words for pretraining the language model on text alone: the project's English word list (npm
 * an-array-of-english-words) or any text file (split on white space), each word normalised by the label
 * protocol (case folding, unsupported characters removed, too long or empty dropped), and a hash split into
 * training and held-out words (so no held-out word is ever trained on).
 */
import { type Charset, charsetFor, type Protocol } from "./charset.ts";
import { hashSeed } from "./random.ts";
import { englishWords } from "./words.ts";

export interface Corpus {
  train: string[];
  heldOut: string[];
  /** Tokens read, and how many were dropped (empty after normalisation or too long). */
  read: number;
  dropped: number;
}

/** Whether a word is on the held-out side (independent of any seed; case-insensitive). */
export function isHeldOut(word: string, fraction: number): boolean {
  return hashSeed("strata-lm-heldout-v1", word.toLowerCase()) / 4294967296 < fraction;
}

export function buildCorpus(
  tokens: Iterable<string>,
  protocol: Protocol,
  maxLength: number,
  heldOutFraction: number,
  limit?: number,
): Corpus & { charset: Charset } {
  const charset = charsetFor(protocol);
  const out: Corpus = { train: [], heldOut: [], read: 0, dropped: 0 };
  for (const token of tokens) {
    if (limit !== undefined && out.train.length + out.heldOut.length >= limit) break;
    out.read++;
    const n = charset.normalize(token, { maxLength });
    if (!n.ok) {
      out.dropped++;
      continue;
    }
    (isHeldOut(n.text, heldOutFraction) ? out.heldOut : out.train).push(n.text);
  }
  return { ...out, charset };
}

/** White-space separated tokens of a text file (streamed line by line would not pay off for word lists). */
export async function textFileTokens(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read the text corpus: ${(e as Error).message}`);
  }
  return text.split(/\s+/).filter((t) => t !== "");
}

/** The default corpus: the English word list. */
export function defaultTokens(): string[] {
  return englishWords();
}
