/**
 * Character sets and label protocols.
 *
 * Class 0 is the null class (EOS and padding); `chars[i]` has class i + 1.
 * The three protocols nest, so a model trained on 36 classes keeps its
 * class indices under 62 and 94:
 *
 * - 36: ABINet's `charset_36.txt` order: a..z = 1..26, '1'..'9' = 27..35, '0' = 36.
 *   Labels are lower-cased (the standard case-insensitive benchmark protocol).
 * - 62: the 36 above, then A..Z = 37..62 (case-sensitive alphanumerics).
 * - 94: the 62 above, then the 32 printable ASCII punctuation characters in
 *   ASCII order (`!` .. `~`) = 63..94. Space is not a class.
 *
 * `normalize` applies NFKD, removes combining marks (é → e), folds case for
 * protocol 36, and removes characters outside the charset (as ABINet does
 * with `re.sub('[^0-9a-zA-Z]+', '', label)`); every such change is reported.
 * A label that ends up empty or longer than the max length is dropped with a
 * reason, so loaders and importers can count what they drop and why.
 */

export type Protocol = 36 | 62 | 94;
export const PROTOCOLS: readonly Protocol[] = [36, 62, 94];

/** The ABINet max length: 25 characters, so 26 positions with the EOS. */
export const MAX_LENGTH = 25;

/** Why a label was dropped. */
export type DropReason = "empty" | "too_long" | "unsupported_char";

/** What `normalize` changed in a kept label. */
export type ChangeReason = "unicode_normalized" | "case_folded" | "chars_removed";

export type NormalizeResult =
  | { readonly ok: true; readonly text: string; readonly changes: readonly ChangeReason[] }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

export interface NormalizeOptions {
  /** Labels longer than this (after normalisation) are dropped; default 25. */
  maxLength?: number;
  /** `remove` (default, ABINet): unsupported characters are removed; `drop`: the label is dropped. */
  unsupported?: "remove" | "drop";
}

export interface Charset {
  readonly protocol: Protocol;
  readonly caseSensitive: boolean;
  /** The characters; `chars[i]` has class i + 1. */
  readonly chars: string;
  /** chars.length + 1 (class 0 is the null class). */
  readonly numClasses: number;
  /** Class of a character, or -1 when it is not in the charset. */
  classOf(ch: string): number;
  normalize(label: string, opts?: NormalizeOptions): NormalizeResult;
  /**
   * Class indices of a normalised text: Int32Array(maxLength + 1), the
   * characters then 0 to the end. Throws on a character outside the charset
   * or a text longer than maxLength (normalise first).
   */
  encode(text: string, maxLength?: number): Int32Array;
  /** Text of class indices, up to the first 0 (EOS); indices outside 1..chars.length are skipped. */
  decode(indices: ArrayLike<number>): string;
}

const LOWER = "abcdefghijklmnopqrstuvwxyz";
const DIGITS = "1234567890";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const PUNCT = (() => {
  let s = "";
  for (let c = 33; c <= 126; c++) {
    const ch = String.fromCharCode(c);
    if (!/[0-9A-Za-z]/.test(ch)) s += ch;
  }
  return s;
})();

const CHARS: Record<Protocol, string> = {
  36: LOWER + DIGITS,
  62: LOWER + DIGITS + UPPER,
  94: LOWER + DIGITS + UPPER + PUNCT,
};

const COMBINING = /\p{M}/gu;

class CharsetImpl implements Charset {
  readonly caseSensitive: boolean;
  readonly chars: string;
  readonly numClasses: number;
  readonly #classes = new Map<string, number>();

  constructor(readonly protocol: Protocol) {
    this.chars = CHARS[protocol];
    this.numClasses = this.chars.length + 1;
    this.caseSensitive = protocol !== 36;
    for (let i = 0; i < this.chars.length; i++) this.#classes.set(this.chars[i], i + 1);
  }

  classOf(ch: string): number {
    return this.#classes.get(ch) ?? -1;
  }

  normalize(label: string, opts: NormalizeOptions = {}): NormalizeResult {
    const maxLength = opts.maxLength ?? MAX_LENGTH;
    const changes: ChangeReason[] = [];
    let text = label.normalize("NFKD").replace(COMBINING, "");
    if (text !== label) changes.push("unicode_normalized");
    if (!this.caseSensitive) {
      const lower = text.toLowerCase();
      if (lower !== text) changes.push("case_folded");
      text = lower;
    }
    let kept = "";
    const removed: string[] = [];
    for (const ch of text) {
      if (this.#classes.has(ch)) kept += ch;
      else removed.push(ch);
    }
    if (removed.length > 0) {
      // Whitespace inside or around a word is not worth a drop even with `unsupported: drop`.
      const significant = removed.filter((c) => !/\s/u.test(c));
      if (opts.unsupported === "drop" && significant.length > 0) {
        return {
          ok: false,
          reason: "unsupported_char",
          detail: `characters outside protocol ${this.protocol}: ${JSON.stringify([...new Set(significant)].join(""))}`,
        };
      }
      changes.push("chars_removed");
    }
    if (kept.length === 0) {
      return {
        ok: false,
        reason: "empty",
        detail: label.length === 0
          ? "empty label"
          : `no characters of protocol ${this.protocol} in ${JSON.stringify(label)}`,
      };
    }
    if (kept.length > maxLength) {
      return { ok: false, reason: "too_long", detail: `${kept.length} characters > max length ${maxLength}` };
    }
    return { ok: true, text: kept, changes };
  }

  encode(text: string, maxLength = MAX_LENGTH): Int32Array {
    if (text.length > maxLength) {
      throw new Error(`label ${JSON.stringify(text)} has ${text.length} characters > max length ${maxLength}`);
    }
    const out = new Int32Array(maxLength + 1);
    for (let i = 0; i < text.length; i++) {
      const c = this.#classes.get(text[i]);
      if (c === undefined) {
        throw new Error(
          `label ${JSON.stringify(text)}: ${JSON.stringify(text[i])} is not in protocol ${this.protocol}`,
        );
      }
      out[i] = c;
    }
    return out;
  }

  decode(indices: ArrayLike<number>): string {
    let s = "";
    for (let i = 0; i < indices.length; i++) {
      const c = indices[i];
      if (c === 0) break;
      if (c >= 1 && c <= this.chars.length) s += this.chars[c - 1];
    }
    return s;
  }
}

const cache = new Map<Protocol, Charset>();

export function charsetFor(protocol: Protocol): Charset {
  if (!PROTOCOLS.includes(protocol)) {
    throw new Error(`unknown label protocol ${protocol}; expected one of ${PROTOCOLS.join(", ")}`);
  }
  let cs = cache.get(protocol);
  if (!cs) cache.set(protocol, cs = new CharsetImpl(protocol));
  return cs;
}

/**
 * Tallies what normalisation did over a data set: kept, changed (by reason)
 * and dropped (by reason), with a few examples of each, for stage summaries.
 */
export class LabelCounts {
  kept = 0;
  changed: Record<string, number> = {};
  dropped: Record<string, number> = {};
  examples: Record<string, string[]> = {};

  constructor(readonly maxExamples = 5) {}

  /** Records one normalisation result; `where` names the sample (e.g. its index). */
  add(result: NormalizeResult, original: string, where: string | number): void {
    if (result.ok) {
      this.kept++;
      for (const c of result.changes) {
        this.changed[c] = (this.changed[c] ?? 0) + 1;
        this.#example(c, `${where}: ${JSON.stringify(original)} → ${JSON.stringify(result.text)}`);
      }
    } else {
      this.dropped[result.reason] = (this.dropped[result.reason] ?? 0) + 1;
      this.#example(result.reason, `${where}: ${result.detail}`);
    }
  }

  get droppedTotal(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0);
  }

  #example(key: string, text: string): void {
    const list = this.examples[key] ??= [];
    if (list.length < this.maxExamples) list.push(text);
  }

  toJSON(): Record<string, unknown> {
    return { kept: this.kept, changed: this.changed, dropped: this.dropped, examples: this.examples };
  }
}
