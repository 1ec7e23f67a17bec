/**
 * Nearest-neighbour resizing of NHWC maps with PyTorch's `mode='nearest'` indexing
 * (`src = floor(dst · in / out)`), built from ops whose gradients are right on every tfjs backend:
 * integer factors repeat by reshape + broadcast multiply; other sizes multiply by a fixed 0/1
 * selection matrix. (tfjs's `ResizeNearestNeighborGrad` on cpu is wrong for batch > 1.)
 */
import * as tf from "@tensorflow/tfjs";

/** `[out, in]` 0/1 matrix selecting `floor(o · in / out)` for each output index o. */
function selection(inSize: number, outSize: number): tf.Tensor2D {
  const m = new Float32Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) m[o * inSize + Math.min(inSize - 1, Math.floor((o * inSize) / outSize))] = 1;
  return tf.tensor2d(m, [outSize, inSize]);
}

function resizeAxis(x: tf.Tensor4D, axis: 1 | 2, outSize: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const inSize = x.shape[axis];
  if (outSize === inSize) return x;
  if (outSize % inSize === 0) {
    const k = outSize / inSize;
    const ones = tf.ones(axis === 1 ? [1, 1, k, 1, 1] : [1, 1, 1, k, 1]);
    const expanded = axis === 1 ? tf.reshape(x, [b, h, 1, w, c]) : tf.reshape(x, [b, h, w, 1, c]);
    const out = tf.mul(expanded, ones);
    return tf.reshape(out, axis === 1 ? [b, outSize, w, c] : [b, h, outSize, c]) as tf.Tensor4D;
  }
  const sel = selection(inSize, outSize); // [out, in]
  // Move the axis to the end, multiply by sel^T, move it back.
  const perm = axis === 1 ? [0, 2, 3, 1] : [0, 1, 3, 2];
  const moved = tf.transpose(x, perm);
  const flat = tf.reshape(moved, [-1, inSize]) as tf.Tensor2D;
  const picked = tf.matMul(flat, sel, false, true);
  const back = tf.reshape(picked, [...moved.shape.slice(0, 3), outSize]);
  const inverse = axis === 1 ? [0, 3, 1, 2] : [0, 1, 3, 2];
  return tf.transpose(back, inverse) as tf.Tensor4D;
}

/** Resizes `[B, H, W, C]` to `[B, outH, outW, C]`, PyTorch 'nearest'. */
export function resizeNearest(x: tf.Tensor4D, outH: number, outW: number): tf.Tensor4D {
  return resizeAxis(resizeAxis(x, 1, outH), 2, outW);
}
