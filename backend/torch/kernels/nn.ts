/** Matrix products, convolutions, pooling, batch norm (inference form) and resizing. */
import * as tf from "@tensorflow/tfjs";
import type { TorchBackend } from "../backend.ts";
import { type Attrs, h, i32, type Inputs, out, register } from "./common.ts";

const ACTIVATION: Record<string, number> = { linear: 0, relu: 1, relu6: 2, elu: 3, sigmoid: 4, leakyrelu: 5, prelu: 6 };

function activationCode(name: string | undefined | null): number {
  const code = ACTIVATION[name ?? "linear"];
  if (code === undefined) throw new Error(`torch backend: fused activation "${name}" is not supported`);
  return code;
}

function matmulShape(a: tf.TensorInfo, c: tf.TensorInfo, ta: boolean, tb: boolean): number[] {
  const ra = a.shape.length, rb = c.shape.length;
  const m = ta ? a.shape[ra - 1] : a.shape[ra - 2];
  const n = tb ? c.shape[rb - 2] : c.shape[rb - 1];
  const batch = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), c.shape.slice(0, -2));
  return [...batch, m, n];
}

function convInfo(x: tf.TensorInfo, filterShape: number[], a: Attrs, depthwise: boolean) {
  if (a.dataFormat !== undefined && a.dataFormat !== "NHWC" && a.dataFormat !== "channelsLast") {
    throw new Error(`torch backend: conv dataFormat ${a.dataFormat} is not supported (NHWC is)`);
  }
  const dilations = a.dilations ?? 1;
  return tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    depthwise && (dilations === undefined || dilations === null) ? [1, 1] : dilations,
    a.pad,
    a.dimRoundingMode,
    depthwise,
  );
}

function pads(info: tf.backend_util.Conv2DInfo): Int32Array {
  const p = info.padInfo;
  return i32([p.top, p.bottom, p.left, p.right]);
}

function conv(b: TorchBackend, name: string, inputs: Inputs, a: Attrs, depthwise: boolean, fused: boolean) {
  const { x, filter, bias, preluActivationWeights } = inputs;
  const info = convInfo(x, filter.shape, a, depthwise);
  const shape = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  const hh = b.shim.sym.st_conv2d(
    h(b, x),
    h(b, filter),
    i32([info.strideHeight, info.strideWidth]),
    pads(info),
    i32([info.dilationHeight, info.dilationWidth]),
    depthwise ? 1 : 0,
    fused && bias ? h(b, bias) : null,
    fused ? activationCode(a.activation) : 0,
    fused && preluActivationWeights ? h(b, preluActivationWeights) : null,
    a.leakyreluAlpha ?? 0.2,
  );
  return out(b, name, hh, shape, "float32");
}

/** Per-output-index source rows and weights of tfjs's resize kernels (exactly their index arithmetic). */
function resizeTable(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  halfPixel: boolean,
  bilinear: boolean,
): { idx: Int32Array; w: Float32Array; taps: number } {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const scale = effIn / effOut;
  if (bilinear) {
    const idx = new Int32Array(2 * outSize), w = new Float32Array(2 * outSize);
    for (let o = 0; o < outSize; o++) {
      const src = halfPixel ? scale * (o + 0.5) - 0.5 : scale * o;
      const lo = Math.max(0, Math.floor(src));
      const hi = Math.min(inSize - 1, Math.ceil(src));
      const frac = src - Math.floor(src);
      idx[o] = lo;
      w[o] = 1 - frac;
      idx[outSize + o] = hi;
      w[outSize + o] = frac;
    }
    return { idx, w, taps: 2 };
  }
  const idx = new Int32Array(outSize), w = new Float32Array(outSize).fill(1);
  for (let o = 0; o < outSize; o++) {
    const src = halfPixel ? scale * (o + 0.5) : scale * o;
    let nearest = Math.min(inSize - 1, alignCorners ? Math.round(src) : Math.floor(src));
    if (halfPixel) nearest = Math.max(0, nearest);
    idx[o] = nearest;
  }
  return { idx, w, taps: 1 };
}

function resize(b: TorchBackend, name: string, images: tf.TensorInfo, a: Attrs, bilinear: boolean) {
  const [n, ih, iw, c] = images.shape;
  const [oh, ow] = a.size as [number, number];
  const rows = resizeTable(ih, oh, a.alignCorners, a.halfPixelCenters, bilinear);
  const cols = resizeTable(iw, ow, a.alignCorners, a.halfPixelCenters, bilinear);
  const hh = b.shim.sym.st_resize(h(b, images), rows.idx, rows.w, oh, cols.idx, cols.w, ow, rows.taps);
  return out(b, name, hh, [n, oh, ow, c], "float32");
}

function resizeGrad(b: TorchBackend, name: string, images: tf.TensorInfo, dy: tf.TensorInfo, a: Attrs, bil: boolean) {
  const [, ih, iw] = images.shape;
  const [, oh, ow] = dy.shape;
  const rows = resizeTable(ih, oh, a.alignCorners, a.halfPixelCenters, bil);
  const cols = resizeTable(iw, ow, a.alignCorners, a.halfPixelCenters, bil);
  const hh = b.shim.sym.st_resize_grad(h(b, dy), rows.idx, rows.w, ih, cols.idx, cols.w, iw, rows.taps);
  return out(b, name, hh, images.shape, "float32");
}

function poolInfo(x: tf.TensorInfo, a: Attrs) {
  return tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
}

export function registerNn(): void {
  register("BatchMatMul", (b, { a, b: c }, { transposeA, transposeB }) => {
    const shape = matmulShape(a, c, transposeA, transposeB);
    return out(
      b,
      "BatchMatMul",
      b.shim.sym.st_matmul(h(b, a), h(b, c), transposeA ? 1 : 0, transposeB ? 1 : 0),
      shape,
      "float32",
    );
  });
  register("_FusedMatMul", (b, { a, b: c, bias, preluActivationWeights }, at) => {
    const shape = matmulShape(a, c, at.transposeA, at.transposeB);
    const hh = b.shim.sym.st_fused_matmul(
      h(b, a),
      h(b, c),
      at.transposeA ? 1 : 0,
      at.transposeB ? 1 : 0,
      bias ? h(b, bias) : null,
      activationCode(at.activation),
      preluActivationWeights ? h(b, preluActivationWeights) : null,
      at.leakyreluAlpha ?? 0.2,
    );
    return out(b, "_FusedMatMul", hh, shape, "float32");
  });
  register("Conv2D", (b, inputs, a) => conv(b, "Conv2D", inputs, a, false, false));
  register("FusedConv2D", (b, inputs, a) => conv(b, "FusedConv2D", inputs, a, false, true));
  register("DepthwiseConv2dNative", (b, inputs, a) => conv(b, "DepthwiseConv2dNative", inputs, a, true, false));
  register("FusedDepthwiseConv2D", (b, inputs, a) => conv(b, "FusedDepthwiseConv2D", inputs, a, true, true));
  for (
    const [name, depthwise] of [["Conv2DBackpropInput", false], ["DepthwiseConv2dNativeBackpropInput", true]] as const
  ) {
    register(name, (b, { dy, filter }, a) => {
      const inputShape = a.inputShape as number[];
      const info = convInfo({ shape: inputShape } as tf.TensorInfo, filter.shape, a, depthwise);
      const hh = b.shim.sym.st_conv2d_backprop_input(
        h(b, dy),
        h(b, filter),
        i32(inputShape),
        i32([info.strideHeight, info.strideWidth]),
        pads(info),
        i32([info.dilationHeight, info.dilationWidth]),
        depthwise ? 1 : 0,
      );
      return out(b, name, hh, inputShape, "float32");
    });
  }
  for (
    const [name, depthwise] of [["Conv2DBackpropFilter", false], ["DepthwiseConv2dNativeBackpropFilter", true]] as const
  ) {
    register(name, (b, { x, dy }, a) => {
      const filterShape = a.filterShape as number[];
      const info = convInfo(x, filterShape, a, depthwise);
      const hh = b.shim.sym.st_conv2d_backprop_filter(
        h(b, x),
        h(b, dy),
        i32(filterShape),
        i32([info.strideHeight, info.strideWidth]),
        pads(info),
        i32([info.dilationHeight, info.dilationWidth]),
        depthwise ? 1 : 0,
      );
      return out(b, name, hh, filterShape, "float32");
    });
  }
  for (const [name, kind] of [["MaxPool", 0], ["AvgPool", 1]] as const) {
    register(name, (b, { x }, a) => {
      const info = poolInfo(x, a);
      const hh = b.shim.sym.st_pool2d(
        kind,
        h(b, x),
        i32([info.filterHeight, info.filterWidth]),
        i32([info.strideHeight, info.strideWidth]),
        pads(info),
      );
      return out(b, name, hh, [info.batchSize, info.outHeight, info.outWidth, info.outChannels], "float32");
    });
  }
  for (const [name, kind] of [["MaxPoolGrad", 0], ["AvgPoolGrad", 1]] as const) {
    register(name, (b, { dy, input }, a) => {
      const info = poolInfo(input, a);
      const hh = b.shim.sym.st_pool2d_grad(
        kind,
        h(b, dy),
        h(b, input),
        i32([info.filterHeight, info.filterWidth]),
        i32([info.strideHeight, info.strideWidth]),
        pads(info),
      );
      return out(b, name, hh, input.shape, "float32");
    });
  }
  register("ResizeBilinear", (b, { images }, a) => resize(b, "ResizeBilinear", images, a, true));
  register("ResizeNearestNeighbor", (b, { images }, a) => resize(b, "ResizeNearestNeighbor", images, a, false));
  register("ResizeBilinearGrad", (b, { images, dy }, a) => resizeGrad(b, "ResizeBilinearGrad", images, dy, a, true));
  register(
    "ResizeNearestNeighborGrad",
    (b, { images, dy }, a) => resizeGrad(b, "ResizeNearestNeighborGrad", images, dy, a, false),
  );
}
