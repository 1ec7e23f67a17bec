/** Element-wise kernels: unary, unary with scalar attributes, binary with numpy broadcasting, select, cast. */
import * as tf from "@tensorflow/tfjs";
import type { TorchBackend } from "../backend.ts";
import { type Attrs, dtypeCode, h, type Inputs, out, register } from "./common.ts";

/** tfjs unary kernel → shim op code; `bool: true` when the result is boolean. */
const UNARY: Record<string, { op: number; bool?: boolean; float?: boolean }> = {
  Neg: { op: 0 },
  Exp: { op: 1, float: true },
  Log: { op: 2, float: true },
  Sqrt: { op: 3, float: true },
  Rsqrt: { op: 4, float: true },
  Square: { op: 5 },
  Abs: { op: 6 },
  Sign: { op: 7 },
  Floor: { op: 8 },
  Ceil: { op: 9 },
  Round: { op: 10 },
  Relu: { op: 11 },
  Relu6: { op: 12 },
  Sigmoid: { op: 13, float: true },
  Tanh: { op: 14, float: true },
  Sin: { op: 15, float: true },
  Cos: { op: 16, float: true },
  Erf: { op: 17, float: true },
  Reciprocal: { op: 18, float: true },
  Log1p: { op: 19, float: true },
  Expm1: { op: 20, float: true },
  Softplus: { op: 21, float: true },
  LogicalNot: { op: 22, bool: true },
  IsNan: { op: 23, bool: true },
  Elu: { op: 24, float: true },
  Selu: { op: 25, float: true },
  IsInf: { op: 26, bool: true },
  IsFinite: { op: 27, bool: true },
  Tan: { op: 28, float: true },
  Asin: { op: 29, float: true },
  Acos: { op: 30, float: true },
  Atan: { op: 31, float: true },
  Sinh: { op: 32, float: true },
  Cosh: { op: 33, float: true },
  Asinh: { op: 34, float: true },
  Acosh: { op: 35, float: true },
  Atanh: { op: 36, float: true },
};

const BINARY: Record<string, { op: number; bool?: boolean; float?: boolean }> = {
  Add: { op: 0 },
  Sub: { op: 1 },
  Multiply: { op: 2 },
  RealDiv: { op: 3, float: true },
  Maximum: { op: 4 },
  Minimum: { op: 5 },
  Pow: { op: 6 },
  SquaredDifference: { op: 7 },
  FloorDiv: { op: 8 },
  Mod: { op: 9 },
  Equal: { op: 10, bool: true },
  NotEqual: { op: 11, bool: true },
  Greater: { op: 12, bool: true },
  GreaterEqual: { op: 13, bool: true },
  Less: { op: 14, bool: true },
  LessEqual: { op: 15, bool: true },
  LogicalAnd: { op: 16, bool: true },
  LogicalOr: { op: 17, bool: true },
  Atan2: { op: 18, float: true },
};

function unaryDtype(spec: { bool?: boolean; float?: boolean }, x: tf.DataType): tf.DataType {
  return spec.bool ? "bool" : spec.float ? "float32" : x === "bool" ? "float32" : x;
}

export function unary(b: TorchBackend, name: string, x: tf.TensorInfo): tf.TensorInfo {
  const spec = UNARY[name];
  const dtype = unaryDtype(spec, x.dtype);
  return out(b, name, b.shim.sym.st_unary(spec.op, h(b, x), dtypeCode(dtype)), x.shape, dtype);
}

export function binary(b: TorchBackend, name: string, a: tf.TensorInfo, c: tf.TensorInfo): tf.TensorInfo {
  const spec = BINARY[name];
  const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, c.shape);
  const dtype: tf.DataType = spec.bool ? "bool" : spec.float ? "float32" : tf.upcastType(a.dtype, c.dtype);
  return out(b, name, b.shim.sym.st_binary(spec.op, h(b, a), h(b, c), dtypeCode(dtype)), shape, dtype);
}

export function cast(b: TorchBackend, x: tf.TensorInfo, dtype: tf.DataType): tf.TensorInfo {
  return out(b, "Cast", b.shim.sym.st_cast(h(b, x), dtypeCode(dtype)), x.shape, dtype);
}

export function identity(b: TorchBackend, x: tf.TensorInfo): tf.TensorInfo {
  return out(b, "Identity", b.shim.sym.st_ref(h(b, x)), x.shape, x.dtype);
}

export function registerElementwise(): void {
  for (const name of Object.keys(UNARY)) register(name, (b, { x }) => unary(b, name, x));
  for (const name of Object.keys(BINARY)) register(name, (b, { a, b: c }) => binary(b, name, a, c));
  const scalarOp = (name: string, op: number, args: (a: Attrs) => [number, number]) =>
    register(name, (b, { x }, attrs) => {
      const [p, q] = args(attrs);
      const dtype = x.dtype === "bool" ? "float32" : x.dtype;
      return out(b, name, b.shim.sym.st_unary_scalar(op, h(b, x), p, q, dtypeCode(dtype)), x.shape, dtype);
    });
  scalarOp("LeakyRelu", 0, (a) => [a.alpha, 0]);
  scalarOp("Step", 1, (a) => [a.alpha ?? 0, 0]);
  scalarOp("ClipByValue", 2, (a) => [a.clipValueMin, a.clipValueMax]);
  register("Prelu", (b, { x, alpha }: Inputs) => {
    const shape = tf.backend_util.assertAndGetBroadcastShape(x.shape, alpha.shape);
    return out(b, "Prelu", b.shim.sym.st_binary(19, h(b, x), h(b, alpha), dtypeCode("float32")), shape, "float32");
  });
  register("AddN", (b, inputs) => {
    const list = Object.values(inputs);
    if (list.length === 1) return identity(b, list[0]);
    let acc = binary(b, "Add", list[0], list[1]);
    for (let i = 2; i < list.length; i++) {
      const next = binary(b, "Add", acc, list[i]);
      b.disposeData(acc.dataId);
      acc = next;
    }
    return acc;
  });
  register("Select", (b, { condition, t, e }) => {
    const shape = tf.backend_util.assertAndGetBroadcastShape(
      tf.backend_util.assertAndGetBroadcastShape(condition.shape, t.shape),
      e.shape,
    );
    const dtype = tf.upcastType(t.dtype, e.dtype);
    return out(b, "Select", b.shim.sym.st_select(h(b, condition), h(b, t), h(b, e)), shape, dtype);
  });
  register("EluGrad", (b, { dy, y }) => {
    // dy · (y ≥ 0 ? 1 : y + 1), as tfjs.
    const one = b.output(b.upload(Float32Array.of(1), [], "float32"), [], "float32");
    const zero = b.output(b.upload(Float32Array.of(0), [], "float32"), [], "float32");
    const yp1 = binary(b, "Add", y, one);
    const ge = binary(b, "GreaterEqual", y, zero);
    const factor = out(b, "EluGrad", b.shim.sym.st_select(h(b, ge), h(b, one), h(b, yp1)), y.shape, "float32");
    const result = binary(b, "Multiply", dy, factor);
    for (const t of [one, zero, yp1, ge, factor]) b.disposeData(t.dataId);
    return result;
  });
  register("Cast", (b, { x }, { dtype }) => cast(b, x, dtype));
  register("Identity", (b, { x }) => identity(b, x));
}
