/**
 * ConCLR's character-level contrastive loss over the glimpse embeddings of two
 * augmented views (independent implementation of the semantics pinned in
 * `../shared/fixtures/README.md` §3.1, ConCLR `losses.py` `_clr_loss`).
 *
 * Per sample b, with E = [embed1[b] | embed2[b]] ([N = 2T, D]) and
 * lab = [labels1[b] | labels2[b]]:
 *
 * - S = E Eᵀ / τ.
 * - An anchor m counts only if lab[m] ≠ 0 and it has at least one positive
 *   p ≠ m with lab[p] = lab[m]; P_m = the number of such positives.
 * - lse_m = log(e^0 + Σ_{a≠m} e^{S[m,a]}): the diagonal is replaced by 0 (so
 *   contributes e^0 = 1), it is not excluded. Every other position, label-0
 *   padding included, is in the denominator.
 * - l_m = -(1/P_m) Σ_{p ∈ Pos(m), S[m,p] ≠ 0} (S[m,p] - lse_m): a positive whose
 *   similarity is exactly 0 is dropped from the sum but still counted in P_m
 *   (the reference's `where(p != 0)` quirk).
 * - loss = mean over the batch of Σ_m l_m; rows without a valid anchor give 0.
 *
 * Differentiable: everything label-dependent is a constant mask built on the
 * host; the "S ≠ 0" mask is |sign(S)|, whose gradient is zero. Only
 * equal-batch batched matMuls, elementwise ops and reductions are used (no
 * gather / UnsortedSegmentSum in the gradient path).
 */
import * as tf from "@tensorflow/tfjs";

export interface ContrastiveLossOptions {
  /** Temperature τ (ConCLR default 2). */
  temperature?: number;
}

/**
 * Host-side anchor/positive weights: W[b, m, p] = 1/P_m for each positive p of a
 * valid anchor m, else 0. `labels*` are [B, T] row-major class indices.
 */
export function positiveWeights(
  labels1: Int32Array,
  labels2: Int32Array,
  batch: number,
  positions: number,
): Float32Array {
  if (labels1.length !== batch * positions || labels2.length !== batch * positions) {
    throw new Error(
      `contrastive_loss.ts: labels have ${labels1.length} / ${labels2.length} entries, expected ${batch}×${positions}`,
    );
  }
  const n = 2 * positions;
  const w = new Float32Array(batch * n * n);
  const lab = new Int32Array(n);
  for (let b = 0; b < batch; b++) {
    lab.set(labels1.subarray(b * positions, (b + 1) * positions), 0);
    lab.set(labels2.subarray(b * positions, (b + 1) * positions), positions);
    for (let m = 0; m < n; m++) {
      const c = lab[m];
      if (c === 0) continue;
      let count = 0;
      for (let p = 0; p < n; p++) if (p !== m && lab[p] === c) count++;
      if (count === 0) continue;
      const inv = 1 / count;
      const row = (b * n + m) * n;
      for (let p = 0; p < n; p++) if (p !== m && lab[p] === c) w[row + p] = inv;
    }
  }
  return w;
}

/**
 * The loss (a scalar). `embed1`, `embed2`: [B, T, D] (already L2-normalised by
 * the projection head); `labels1`, `labels2`: [B, T] class indices (0 = null).
 */
export function contrastiveLoss(
  embed1: tf.Tensor3D,
  embed2: tf.Tensor3D,
  labels1: Int32Array,
  labels2: Int32Array,
  options: ContrastiveLossOptions = {},
): tf.Scalar {
  const tau = options.temperature ?? 2;
  if (!(tau > 0)) throw new Error(`contrastive_loss.ts: temperature must be > 0, got ${tau}`);
  const [batch, positions, dim] = embed1.shape;
  if (embed2.shape[0] !== batch || embed2.shape[1] !== positions || embed2.shape[2] !== dim) {
    throw new Error(`contrastive_loss.ts: embed1 [${embed1.shape}] and embed2 [${embed2.shape}] differ in shape`);
  }
  const n = 2 * positions;
  const weights = positiveWeights(labels1, labels2, batch, positions);
  return tf.tidy(() => {
    const w = tf.tensor3d(weights, [batch, n, n]);
    const e = tf.concat([embed1, embed2], 1); // [B, N, D]
    const s = tf.div(tf.matMul(e, e, false, true), tau); // [B, N, N]
    // Diagonal replaced by 0 (not excluded): e^0 = 1 stays in the denominator.
    const offDiagonal = tf.sub(1, tf.eye(n)).reshape([1, n, n]);
    const lse = tf.logSumExp(tf.mul(s, offDiagonal), 2, true); // [B, N, 1]
    // Positives with similarity exactly 0 are dropped (still counted in P_m).
    const wEff = tf.mul(w, tf.abs(tf.sign(s)));
    const positive = tf.sum(tf.mul(wEff, s));
    const normaliser = tf.sum(tf.mul(tf.sum(wEff, 2, true), lse));
    return tf.div(tf.sub(normaliser, positive), batch) as tf.Scalar;
  });
}
