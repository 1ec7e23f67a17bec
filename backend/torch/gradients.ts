/**
 * Replacement gradients for tfjs's `Sum` and `Mean`, whose stock versions multiply by `ones(x.shape)` built
 * in JavaScript and uploaded on every backward pass (for a [128, 256, 512] activation: 64 MB across the FFI
 * per call). These broadcast the upstream gradient on the device instead. The values are identical
 * (x·1 = x), so every backend computes the same numbers as before.
 */
import * as tf from "@tensorflow/tfjs";

function expandedDy(dy: tf.Tensor, x: tf.Tensor, axis: number | number[] | undefined): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis ?? x.shape.map((_, k) => k), x.shape);
  const shape = x.shape.slice();
  for (const a of axes) shape[a] = 1;
  return tf.broadcastTo(tf.reshape(dy, shape), x.shape);
}

let registered = false;

export function registerCheapGradients(): void {
  if (registered) return;
  registered = true;
  tf.registerGradient({
    kernelName: "Sum",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axis } = attrs as unknown as { axis: number | number[] };
      return { x: () => tf.cast(expandedDy(dy as tf.Tensor, x, axis), "float32") };
    },
  });
  tf.registerGradient({
    kernelName: "Mean",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axis } = attrs as unknown as { axis: number | number[] };
      const axes = tf.util.parseAxisParam(axis ?? x.shape.map((_, k) => k), x.shape);
      const [, reduceShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
      const reduceSize = tf.util.sizeFromShape(reduceShape);
      return { x: () => tf.div(expandedDy(dy as tf.Tensor, x, axis), tf.cast(reduceSize, "float32")) };
    },
  });
}
