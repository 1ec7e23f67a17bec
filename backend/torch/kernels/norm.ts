/**
 * strata's fused kernels for the torch backend: LayerNorm and train-mode BatchNorm forward/backward as single
 * ATen calls (tfjs would run ~10 element-wise kernels each way), dropout masks drawn on the device, and
 * tfjs's `FusedBatchNorm` (inference form).
 */
import * as tf from "@tensorflow/tfjs";
import { handlesFrom } from "../ffi.ts";
import { binary, unary } from "./elementwise.ts";
import { h, i32, register } from "./common.ts";

export function registerNorm(): void {
  register("StrataLayerNorm", (b, { x, weight, bias }, { eps }) => {
    const raw = new BigUint64Array(3);
    b.shim.checkStatus("StrataLayerNorm", b.shim.sym.st_layer_norm(h(b, x), h(b, weight), h(b, bias), eps, raw));
    const [y, mean, rstd] = handlesFrom("StrataLayerNorm", b.shim, raw);
    const stat = [...x.shape.slice(0, -1), 1];
    return [b.output(y, x.shape, "float32"), b.output(mean, stat, "float32"), b.output(rstd, stat, "float32")];
  });
  register("StrataLayerNormGrad", (b, { dy, x, mean, rstd, weight }) => {
    const raw = new BigUint64Array(3);
    const status = b.shim.sym.st_layer_norm_backward(h(b, dy), h(b, x), h(b, mean), h(b, rstd), h(b, weight), raw);
    b.shim.checkStatus("StrataLayerNormGrad", status);
    const [dx, dw, db] = handlesFrom("StrataLayerNormGrad", b.shim, raw);
    return [
      b.output(dx, x.shape, "float32"),
      b.output(dw, weight.shape, "float32"),
      b.output(db, weight.shape, "float32"),
    ];
  });
  register("StrataBatchNormTrain", (b, { x, weight, bias }, { eps }) => {
    const raw = new BigUint64Array(4);
    b.shim.checkStatus(
      "StrataBatchNormTrain",
      b.shim.sym.st_batch_norm_train(h(b, x), h(b, weight), h(b, bias), eps, raw),
    );
    const [y, mean, variance, invstd] = handlesFrom("StrataBatchNormTrain", b.shim, raw);
    const c = [x.shape[x.shape.length - 1]];
    return [
      b.output(y, x.shape, "float32"),
      b.output(mean, c, "float32"),
      b.output(variance, c, "float32"),
      b.output(invstd, c, "float32"),
    ];
  });
  register("StrataBatchNormTrainGrad", (b, { dy, x, mean, invstd, weight }) => {
    const raw = new BigUint64Array(3);
    const status = b.shim.sym.st_batch_norm_backward(h(b, dy), h(b, x), h(b, mean), h(b, invstd), h(b, weight), raw);
    b.shim.checkStatus("StrataBatchNormTrainGrad", status);
    const [dx, dw, db] = handlesFrom("StrataBatchNormTrainGrad", b.shim, raw);
    return [
      b.output(dx, x.shape, "float32"),
      b.output(dw, weight.shape, "float32"),
      b.output(db, weight.shape, "float32"),
    ];
  });
  register("StrataDropoutMask", (b, _inputs, { shape, rate, seed }) => {
    const hh = b.shim.sym.st_dropout_mask(i32(shape), shape.length, rate, BigInt(seed >>> 0));
    return b.output(b.shim.check("StrataDropoutMask", hh), shape, "float32");
  });
  register("FusedBatchNorm", (b, { x, mean, variance, offset, scale }, { varianceEpsilon }) => {
    // (x − mean) · rsqrt(var + ε) · scale + offset, with tfjs's broadcasting.
    const eps = b.output(b.upload(Float32Array.of(varianceEpsilon), [], "float32"), [], "float32");
    const temps: tf.TensorInfo[] = [eps];
    const keep = (t: tf.TensorInfo) => (temps.push(t), t);
    const centered = keep(binary(b, "Sub", x, mean));
    let inv = keep(unary(b, "Rsqrt", keep(binary(b, "Add", variance, eps))));
    if (scale) inv = keep(binary(b, "Multiply", inv, scale));
    let y = binary(b, "Multiply", centered, inv);
    if (offset) {
      const shifted = binary(b, "Add", y, offset);
      b.disposeData(y.dataId);
      y = shifted;
    }
    for (const t of temps) b.disposeData(t.dataId);
    return y;
  });
}

/** Gradients of the fused kernels (registered globally; the kernels exist on the torch backend only). */
export function registerNormGradients(): void {
  tf.registerGradient({
    kernelName: "StrataLayerNorm",
    inputsToSave: ["x", "weight"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      const [x, weight, mean, rstd] = saved;
      const dy = (dys as tf.Tensor[])[0];
      const [dx, dw, db] = tf.engine().runKernel(
        "StrataLayerNormGrad",
        { dy, x, mean, rstd, weight },
        {},
      ) as tf.Tensor[];
      return { x: () => dx, weight: () => dw, bias: () => db };
    },
  });
  tf.registerGradient({
    kernelName: "StrataBatchNormTrain",
    inputsToSave: ["x", "weight"],
    outputsToSave: [false, true, false, true],
    gradFunc: (dys, saved) => {
      const [x, weight, mean, invstd] = saved;
      const dy = (dys as tf.Tensor[])[0];
      const [dx, dw, db] = tf.engine().runKernel(
        "StrataBatchNormTrainGrad",
        { dy, x, mean, invstd, weight },
        {},
      ) as tf.Tensor[];
      return { x: () => dx, weight: () => dw, bias: () => db };
    },
  });
}
