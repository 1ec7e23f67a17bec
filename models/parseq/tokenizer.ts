/**
 * PARSeq's token ids (strhub `Tokenizer`): `[E]` first, then the charset, then `[B]` and `[P]`:
 * EOS = 0, character i (0-based in the charset) = i + 1, BOS = |charset| + 1, PAD = |charset| + 2. The head
 * predicts ids 0..|charset| only (EOS and the characters).
 *
 * That layout is strata's class layout too (class 0 = null/EOS, `chars[i]` = i + 1, see data/charset.ts), so
 * the family boundary needs no id mapping: a model for `numClasses` classes uses BOS = numClasses and
 * PAD = numClasses + 1. `Tokenizer` (with strhub's own charset order, e.g. `0-9a-z`) exists for parity with
 * strhub and for reading its checkpoints; `targetsFromBatch` builds the decoder targets from a strata batch.
 */

export interface SpecialIds {
  eos: number;
  bos: number;
  pad: number;
}

/** Special ids for a head of `numClasses` outputs (EOS + characters). */
export function specialIds(numClasses: number): SpecialIds {
  return { eos: 0, bos: numClasses, pad: numClasses + 1 };
}

/** `[B, n + 2]` row-major ids: `[BOS] + ids + [EOS]`, right-padded with PAD to the longest label + 2. */
export interface Targets {
  ids: Int32Array;
  batch: number;
  /** n + 2, where n is the longest label of the batch. */
  length: number;
}

/** Pads id sequences as strhub's `Tokenizer.encode` (`pad_sequence(batch_first=True, padding_value=PAD)`). */
export function padTargets(sequences: number[][], ids: SpecialIds): Targets {
  const n = Math.max(0, ...sequences.map((s) => s.length));
  const length = n + 2;
  const out = new Int32Array(sequences.length * length).fill(ids.pad);
  sequences.forEach((seq, b) => {
    out[b * length] = ids.bos;
    seq.forEach((id, i) => (out[b * length + 1 + i] = id));
    out[b * length + 1 + seq.length] = ids.eos;
  });
  return { ids: out, batch: sequences.length, length };
}

/**
 * Decoder targets from a strata batch: `labels` `[B, positions]` (characters then 0) and `lengths`
 * (characters + 1). Class ids are used as they are (see the module comment).
 */
export function targetsFromBatch(
  labels: Int32Array,
  lengths: Int32Array,
  positions: number,
  numClasses: number,
): Targets {
  const seqs: number[][] = [];
  for (let b = 0; b < lengths.length; b++) {
    const n = Math.max(0, Math.min(lengths[b] - 1, positions - 1));
    const row = Array.from(labels.subarray(b * positions, b * positions + n));
    const bad = row.findIndex((id) => id <= 0 || id >= numClasses);
    if (bad >= 0) {
      throw new Error(
        `models/parseq/tokenizer.ts: sample ${b} position ${bad}: class ${row[bad]} ∉ [1, ${numClasses})`,
      );
    }
    seqs.push(row);
  }
  return padTargets(seqs, specialIds(numClasses));
}

export interface TokenDecoded {
  /** Ids before the first EOS (all positions when there is none; no cut with `raw`). */
  ids: number[];
  text: string;
  /** Chosen probabilities up to and including the first EOS (all positions when there is none). */
  probs: number[];
  /** Product of `probs`. */
  confidence: number;
}

/** strhub's `Tokenizer(charset)`: the vocabulary `itos`, encode and greedy decode. */
export class Tokenizer {
  readonly itos: string[];
  readonly ids: SpecialIds;
  readonly #stoi = new Map<string, number>();

  constructor(readonly charset: string) {
    const chars = [...charset];
    this.itos = ["[E]", ...chars, "[B]", "[P]"];
    this.ids = specialIds(chars.length + 1);
    chars.forEach((ch, i) => this.#stoi.set(ch, i + 1));
  }

  /** Outputs of the model head: EOS + characters. */
  get numModelClasses(): number {
    return this.ids.bos;
  }

  /** As strhub: no lowercasing or filtering (the data pipeline does that); an unknown character is an error. */
  encode(labels: string[]): Targets {
    return padTargets(
      labels.map((label) =>
        [...label].map((ch) => {
          const id = this.#stoi.get(ch);
          if (id === undefined) {
            throw new Error(`models/parseq/tokenizer.ts: "${ch}" of "${label}" is not in the charset`);
          }
          return id;
        })
      ),
      this.ids,
    );
  }

  /**
   * Greedy decode of `[B, L, numModelClasses]` probabilities (row-major): ids cut before the first EOS, probs
   * cut after it (the EOS probability is kept), confidence = their product. `raw` cuts nothing.
   */
  decode(dists: ArrayLike<number>, shape: readonly number[], raw = false): TokenDecoded[] {
    const [batch, length, classes] = shape;
    const out: TokenDecoded[] = [];
    for (let b = 0; b < batch; b++) {
      const ids: number[] = [];
      const probs: number[] = [];
      for (let t = 0; t < length; t++) {
        const base = (b * length + t) * classes;
        let best = 0;
        for (let c = 1; c < classes; c++) if (dists[base + c] > dists[base + best]) best = c;
        probs.push(dists[base + best]);
        if (!raw && best === this.ids.eos) break;
        ids.push(best);
      }
      const text = ids.map((i) => this.itos[i]).join("");
      out.push({ ids, text, probs, confidence: probs.reduce((a, p) => a * p, 1) });
    }
    return out;
  }

  /** Tokens of ids (specials as `[E]`, `[B]`, `[P]`). */
  tokens(ids: number[]): string[] {
    return ids.map((i) => this.itos[i]);
  }
}
