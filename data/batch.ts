/**
 * The batch format that the loader produces and the models consume. Plain
 * typed arrays, so that data code does not depend on tfjs.
 */

export interface Batch {
  /** Images, NHWC float32, normalised as the loader's `normalize` param says. */
  images: Float32Array;
  /** [batch, height, width, channels]. */
  shape: [number, number, number, number];
  /**
   * Class indices, [batch, maxLength + 1] row-major: the word's characters
   * (1-based charset indices), then 0 (the null class, which is both EOS and
   * padding) to the end, as ABINet's dataset feeds its models.
   */
  labels: Int32Array;
  /** Characters + 1 (the EOS), capped at maxLength + 1. */
  lengths: Int32Array;
  /** The normalised label strings. */
  texts: string[];
  /** Sample indices in the source data set (1-based LMDB indices). */
  indices: number[];
  /**
   * Which data set each sample comes from, when a loader reads several
   * (position in its list of paths); absent or 0 for a single one.
   */
  sources?: number[];
}
