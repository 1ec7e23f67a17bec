/** Reductions, arg-reductions, softmax, cumulative sums and top-k. */
import * as tf from "@tensorflow/tfjs";
import type { TorchBackend } from "../backend.ts";
import { handlesFrom } from "../ffi.ts";
import { dtypeCode, h, i32, out, register } from "./common.ts";

const OPS = { Sum: 0, Mean: 1, Max: 2, Min: 3, Prod: 4, All: 5, Any: 6 } as const;

export function reduce(
  b: TorchBackend,
  name: keyof typeof OPS,
  x: tf.TensorInfo,
  axis: number | number[] | null | undefined,
  keepDims: boolean,
): tf.TensorInfo {
  const axes = tf.util.parseAxisParam(axis ?? x.shape.map((_, k) => k), x.shape);
  const [reduced] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
  const shape = keepDims ? tf.backend_util.expandShapeToKeepDim(reduced, axes) : reduced;
  let dtype: tf.DataType = x.dtype;
  if (name === "Sum" || name === "Prod") dtype = tf.upcastType(x.dtype, "int32");
  if (name === "Mean") dtype = "float32";
  if (name === "All" || name === "Any") dtype = "bool";
  const hh = b.shim.sym.st_reduce(OPS[name], h(b, x), i32(axes), axes.length, keepDims ? 1 : 0, dtypeCode(dtype));
  return out(b, name, hh, shape, dtype);
}

export function registerReduce(): void {
  for (const name of ["Sum", "Mean", "Min", "Prod", "All", "Any"] as const) {
    register(name, (b, { x }, { axis, keepDims }) => reduce(b, name, x, axis, keepDims ?? false));
  }
  register("Max", (b, { x }, { reductionIndices, keepDims }) => reduce(b, "Max", x, reductionIndices, keepDims));
  for (const [name, op] of [["ArgMax", 0], ["ArgMin", 1]] as const) {
    register(name, (b, { x }, { axis }) => {
      const ax = tf.util.parseAxisParam(axis, x.shape)[0];
      const shape = x.shape.filter((_, i) => i !== ax);
      return out(b, name, b.shim.sym.st_arg_reduce(op, h(b, x), ax), shape, "int32");
    });
  }
  register("Softmax", (b, { logits }, { dim }) => {
    const ax = dim === -1 || dim === undefined ? logits.shape.length - 1 : dim;
    return out(b, "Softmax", b.shim.sym.st_softmax(h(b, logits), ax, 0), logits.shape, "float32");
  });
  register("Cumsum", (b, { x }, { axis, exclusive, reverse }) => {
    const dtype = tf.upcastType(x.dtype, "int32");
    const hh = b.shim.sym.st_cumsum(h(b, x), axis, exclusive ? 1 : 0, reverse ? 1 : 0, dtypeCode(dtype));
    return out(b, "Cumsum", hh, x.shape, dtype);
  });
  register("Cumprod", (b, { x }, { axis, exclusive, reverse }) => {
    const dtype = tf.upcastType(x.dtype, "int32");
    const hh = b.shim.sym.st_cumprod(h(b, x), axis, exclusive ? 1 : 0, reverse ? 1 : 0, dtypeCode(dtype));
    return out(b, "Cumprod", hh, x.shape, dtype);
  });
  register("TopK", (b, { x }, { k, sorted }) => {
    const raw = new BigUint64Array(2);
    b.shim.checkStatus("TopK", b.shim.sym.st_topk(h(b, x), k, sorted ? 1 : 0, raw));
    const shape = [...x.shape.slice(0, -1), k];
    const [values, indices] = handlesFrom("TopK", b.shim, raw);
    return [b.output(values, shape, x.dtype), b.output(indices, shape, "int32")];
  });
}
