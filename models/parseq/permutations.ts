/**
 * Permutation Language Modeling targets (PARSeq §3.2; strhub `gen_tgt_perms` / `generate_attn_masks`).
 *
 * For a batch whose longest label has n characters, a permutation is a row of n + 2 positions: 0 (BOS) first,
 * n + 1 (EOS) last, the characters 1..n in between in some order. The rows are
 *
 * - row 0: the forward order (with `perm_forward`);
 * - more rows up to `max_gen_perms` = `perm_num / 2` (mirrored) or `perm_num`: for n < 5 drawn without
 *   replacement from the list of all n! orders (`itertools.permutations` order; only the first half when
 *   mirrored, and for n = 4 mirrored strhub's fixed selector of 12; the forward order left out), for n ≥ 5
 *   uniform random permutations (duplicates possible, as strhub's `torch.randperm`);
 * - mirrored: each row followed by its reverse;
 * - then row 1 (when there are ≥ 2 rows) is replaced by `[0, n+1, n, …, 1]`: EOS predicted from BOS alone,
 *   then the characters right to left;
 * - n = 1 gives the single row `[0, 1, 2]`.
 *
 * Masks (True = may not attend), both `[n+1, n+1]`: for each i, query position `perm[i]` may not see the
 * positions after it in the order; `content_mask` is that matrix without its last row and column, and
 * `query_mask` is the same matrix with the diagonal also masked, rows 1..n+1 and columns 0..n.
 */

/** The random draws of `gen_tgt_perms`; strhub uses numpy's `rng.choice` and `torch.randperm`. */
export interface PermutationRandom {
  /** `size` distinct integers from `[0, n)`, in draw order. */
  choice(n: number, size: number): number[];
  /** A uniform random permutation of `[0, n)`. */
  randperm(n: number): number[];
}

/** `PermutationRandom` from a uniform [0, 1) source (partial Fisher–Yates). */
export function permutationRandom(random: () => number): PermutationRandom {
  const shuffled = (n: number, take: number) => {
    const a = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(random() * (n - i));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, take);
  };
  return { choice: (n, size) => shuffled(n, size), randperm: (n) => shuffled(n, n) };
}

export interface PermutationOptions {
  permNum: number;
  permForward: boolean;
  permMirrored: boolean;
}

/** strhub's `max_gen_perms`. */
export function maxGenPerms(o: PermutationOptions): number {
  return o.permMirrored ? Math.floor(o.permNum / 2) : o.permNum;
}

function factorial(n: number): number {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return f;
}

/** All permutations of `[0, n)` in `itertools.permutations` (lexicographic) order. */
export function allPermutations(n: number): number[][] {
  const out: number[][] = [];
  const rec = (prefix: number[], rest: number[]) => {
    if (rest.length === 0) return void out.push(prefix);
    rest.forEach((v, i) => rec([...prefix, v], [...rest.slice(0, i), ...rest.slice(i + 1)]));
  };
  rec([], Array.from({ length: n }, (_, i) => i));
  return out;
}

/** strhub's selector of 12 representatives of the 24 orders of 4 characters when mirrored. */
const SELECTOR_4_MIRRORED = [0, 3, 4, 6, 9, 10, 12, 16, 17, 18, 19, 21];

/** The permutations for a batch whose longest label has `n` characters: rows of n + 2 positions. */
export function generatePermutations(n: number, o: PermutationOptions, rng: PermutationRandom): number[][] {
  if (n < 1) throw new Error(`models/parseq/permutations.ts: a batch needs at least one character (n = ${n})`);
  if (n === 1) return [[0, 1, 2]];
  const forward = Array.from({ length: n }, (_, i) => i);
  let perms: number[][] = o.permForward ? [forward] : [];
  let maxPerms = factorial(n);
  if (o.permMirrored) maxPerms = Math.floor(maxPerms / 2);
  const numGen = Math.min(maxGenPerms(o), maxPerms);
  if (n < 5) {
    const all = allPermutations(n);
    let pool = n === 4 && o.permMirrored ? SELECTOR_4_MIRRORED.map((i) => all[i]) : all.slice(0, maxPerms);
    if (o.permForward) pool = pool.slice(1);
    if (pool.length > 0) perms = [...perms, ...rng.choice(pool.length, numGen - perms.length).map((i) => pool[i])];
  } else {
    while (perms.length < numGen) perms.push(rng.randperm(n));
  }
  if (o.permMirrored) perms = perms.flatMap((p) => [p, [...p].reverse()]);
  const rows = perms.map((p) => [0, ...p.map((v) => v + 1), n + 1]);
  if (rows.length > 1) rows[1] = [0, ...Array.from({ length: n + 1 }, (_, i) => n + 1 - i)];
  return rows;
}

/** Row-major bool masks `[n+1, n+1]` as Uint8Array (1 = may not attend). */
export interface PermutationMasks {
  size: number;
  content: Uint8Array;
  query: Uint8Array;
}

/** strhub's `generate_attn_masks(perm)`. */
export function attentionMasks(perm: readonly number[]): PermutationMasks {
  const sz = perm.length;
  const full = new Uint8Array(sz * sz);
  for (let i = 0; i < sz; i++) {
    for (let j = i + 1; j < sz; j++) full[perm[i] * sz + perm[j]] = 1;
  }
  const size = sz - 1;
  const content = new Uint8Array(size * size);
  const query = new Uint8Array(size * size);
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      content[r * size + c] = full[r * sz + c];
      // query row r is matrix row r + 1, with the diagonal (row r + 1, column r + 1) masked.
      query[r * size + c] = full[(r + 1) * sz + c] || (c === r + 1 ? 1 : 0);
    }
  }
  return { size, content, query };
}

/** AR decoding's `triu(ones(steps, steps), 1)`: position i sees 0..i. */
export function causalMask(steps: number): Uint8Array {
  const m = new Uint8Array(steps * steps);
  for (let r = 0; r < steps; r++) for (let c = r + 1; c < steps; c++) m[r * steps + c] = 1;
  return m;
}

/** Refinement's cloze query mask `[steps, steps]`: query i sees every content position except i + 1. */
export function clozeMask(steps: number): Uint8Array {
  const m = new Uint8Array(steps * steps);
  for (let r = 0; r + 1 < steps; r++) m[r * steps + r + 1] = 1;
  return m;
}

/** Columns `[0, cols)` of a row-major `[rows, size]` mask. */
export function sliceColumns(mask: Uint8Array, size: number, rows: [number, number], cols: number): Uint8Array {
  const out = new Uint8Array((rows[1] - rows[0]) * cols);
  for (let r = rows[0]; r < rows[1]; r++) {
    for (let c = 0; c < cols; c++) out[(r - rows[0]) * cols + c] = mask[r * size + c];
  }
  return out;
}
