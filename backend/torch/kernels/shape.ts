/** Shape and layout kernels: reshape, transpose, slicing, concatenation, padding, gathers, fills. */
import * as tf from "@tensorflow/tfjs";
import type { TorchBackend } from "../backend.ts";
import { handleArray, handlesFrom } from "../ffi.ts";
import { dtypeCode, h, i32, out, register, sizeOf } from "./common.ts";

export function reshape(b: TorchBackend, x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  const size = sizeOf(x.shape);
  const inferred = tf.util.inferFromImplicitShape(shape, size);
  return out(b, "Reshape", b.shim.sym.st_reshape(h(b, x), i32(inferred), inferred.length), inferred, x.dtype);
}

function stridedSlice(
  b: TorchBackend,
  x: tf.TensorInfo,
  begin: number[],
  end: number[],
  strides: number[],
  finalShape: number[],
): tf.TensorInfo {
  const hh = b.shim.sym.st_strided_slice(h(b, x), i32(begin), i32(end), i32(strides), x.shape.length);
  const sliced = out(b, "StridedSlice", hh, stridedShape(x.shape, begin, end, strides), x.dtype);
  if (sizeOf(sliced.shape) === sizeOf(finalShape) && sliced.shape.join() === finalShape.join()) return sliced;
  const r = reshape(b, sliced, finalShape);
  b.disposeData(sliced.dataId);
  return r;
}

function stridedShape(shape: number[], begin: number[], end: number[], strides: number[]): number[] {
  return shape.map((_, i) => {
    const s = strides[i];
    const n = s > 0 ? Math.ceil((end[i] - begin[i]) / s) : Math.ceil((begin[i] - end[i]) / -s);
    return Math.max(0, n);
  });
}

export function registerShape(): void {
  register("Reshape", (b, { x }, { shape }) => reshape(b, x, shape));
  register("ExpandDims", (b, { input }, { dim }) => {
    const shape = input.shape.slice();
    let axis = dim as number;
    if (axis < 0) axis += input.shape.length + 1;
    shape.splice(axis, 0, 1);
    return reshape(b, input, shape);
  });
  register("Squeeze", (b, { x }, { axis }) => {
    const squeezed = tf.util.squeezeShape(x.shape, axis).newShape;
    return reshape(b, x, squeezed);
  });
  register("Transpose", (b, { x }, { perm }) => {
    const shape = (perm as number[]).map((p) => x.shape[p]);
    return out(b, "Transpose", b.shim.sym.st_transpose(h(b, x), i32(perm), perm.length), shape, x.dtype);
  });
  register("Slice", (b, { x }, { begin, size }) => {
    const [bg, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    const end = bg.map((v, i) => v + sz[i]);
    return stridedSlice(b, x, bg, end, bg.map(() => 1), sz);
  });
  register("StridedSlice", (b, { x }, a) => {
    const info = tf.slice_util.sliceInfo(
      x.shape,
      a.begin,
      a.end,
      a.strides,
      a.beginMask,
      a.endMask,
      a.ellipsisMask,
      a.newAxisMask,
      a.shrinkAxisMask,
    );
    if (info.finalShapeSparse.some((d: number) => d === 0) || sizeOf(info.finalShape) === 0) {
      return out(
        b,
        "StridedSlice",
        b.shim.sym.st_fill(i32(info.finalShape), info.finalShape.length, 0, dtypeCode(x.dtype)),
        info.finalShape,
        x.dtype,
      );
    }
    return stridedSlice(b, x, info.begin, info.end, info.strides, info.finalShape);
  });
  register("Concat", (b, inputs, { axis }) => {
    const list = Object.values(inputs);
    const ax = tf.util.parseAxisParam(axis, list[0].shape)[0];
    const shape = tf.backend_util.computeOutShape(list.map((t) => t.shape), ax);
    const dtype = list.map((t) => t.dtype).reduce((p, c) => tf.upcastType(p, c));
    const nonEmpty = list.filter((t) => sizeOf(t.shape) > 0);
    if (nonEmpty.length === 0) {
      return out(b, "Concat", b.shim.sym.st_fill(i32(shape), shape.length, 0, dtypeCode(dtype)), shape, dtype);
    }
    const hs = handleArray(nonEmpty.map((t) => h(b, t)));
    const r = out(b, "Concat", b.shim.sym.st_concat(hs, nonEmpty.length, ax), shape, dtype);
    return r;
  });
  register("Pack", (b, inputs, { axis }) => {
    const list = Object.values(inputs);
    const rank = list[0].shape.length;
    const ax = axis < 0 ? axis + rank + 1 : axis;
    const shape = list[0].shape.slice();
    shape.splice(ax, 0, list.length);
    const hs = handleArray(list.map((t) => h(b, t)));
    return out(b, "Pack", b.shim.sym.st_stack(hs, list.length, ax), shape, list[0].dtype);
  });
  register("Unpack", (b, { value }, { axis }) => {
    const ax = axis < 0 ? axis + value.shape.length : axis;
    const n = value.shape[ax];
    const raw = new BigUint64Array(n);
    b.shim.checkStatus("Unpack", b.shim.sym.st_unstack(h(b, value), ax, raw));
    const shape = value.shape.filter((_, i) => i !== ax);
    return handlesFrom("Unpack", b.shim, raw).map((hh) => b.output(hh, shape, value.dtype));
  });
  register("SplitV", (b, { x }, { numOrSizeSplits, axis }) => {
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const raw = new BigUint64Array(sizes.length);
    b.shim.checkStatus("SplitV", b.shim.sym.st_split(h(b, x), i32(sizes), sizes.length, ax, raw));
    return handlesFrom("SplitV", b.shim, raw).map((hh, i) => {
      const shape = x.shape.slice();
      shape[ax] = sizes[i];
      return b.output(hh, shape, x.dtype);
    });
  });
  register("Tile", (b, { x }, { reps }) => {
    const shape = x.shape.map((d, i) => d * reps[i]);
    return out(b, "Tile", b.shim.sym.st_tile(h(b, x), i32(reps), reps.length), shape, x.dtype);
  });
  register("PadV2", (b, { x }, { paddings, constantValue }) => {
    const flat = (paddings as number[][]).flat();
    const shape = x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]);
    return out(b, "PadV2", b.shim.sym.st_pad(h(b, x), i32(flat), x.shape.length, constantValue), shape, x.dtype);
  });
  register("MirrorPad", (b, { x }, { paddings, mode }) => {
    const flat = (paddings as number[][]).flat();
    const shape = x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]);
    const reflect = mode === "reflect" ? 1 : 0;
    return out(b, "MirrorPad", b.shim.sym.st_mirror_pad(h(b, x), i32(flat), x.shape.length, reflect), shape, x.dtype);
  });
  register("Reverse", (b, { x }, { dims }) => {
    const axes = tf.util.parseAxisParam(dims, x.shape);
    return out(b, "Reverse", b.shim.sym.st_reverse(h(b, x), i32(axes), axes.length), x.shape, x.dtype);
  });
  register("BroadcastTo", (b, { x }, { shape }) => {
    return out(b, "BroadcastTo", b.shim.sym.st_broadcast_to(h(b, x), i32(shape), shape.length), shape, x.dtype);
  });
  register("GatherV2", (b, { x, indices }, { axis, batchDims }) => {
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    let bd = batchDims ?? 0;
    if (bd < 0) bd += indices.shape.length;
    const shape = [...x.shape.slice(0, ax), ...indices.shape.slice(bd), ...x.shape.slice(ax + 1)];
    return out(b, "GatherV2", b.shim.sym.st_gather(h(b, x), h(b, indices), ax, bd), shape, x.dtype);
  });
  register("GatherNd", (b, { params, indices }) => {
    const k = indices.shape[indices.shape.length - 1];
    const shape = [...indices.shape.slice(0, -1), ...params.shape.slice(k)];
    return out(b, "GatherNd", b.shim.sym.st_gather_nd(h(b, params), h(b, indices)), shape, params.dtype);
  });
  register("OneHot", (b, { indices }, { depth, onValue, offValue, dtype }) => {
    const shape = [...indices.shape, depth];
    const dt = dtype ?? "int32";
    return out(b, "OneHot", b.shim.sym.st_one_hot(h(b, indices), depth, onValue, offValue, dtypeCode(dt)), shape, dt);
  });
  register("UnsortedSegmentSum", (b, { x, segmentIds }, { numSegments }) => {
    const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
    const hh = b.shim.sym.st_unsorted_segment_sum(h(b, x), h(b, segmentIds), numSegments);
    return out(b, "UnsortedSegmentSum", hh, shape, x.dtype);
  });
  register("ScatterNd", (b, { indices, updates }, { shape }) => {
    const hh = b.shim.sym.st_scatter_nd(h(b, indices), h(b, updates), i32(shape), shape.length);
    return out(b, "ScatterNd", hh, shape, updates.dtype);
  });
  register("Fill", (b, _inputs, { shape, value, dtype }) => {
    const dt = dtype ?? (typeof value === "number" ? "float32" : "bool");
    return out(b, "Fill", b.shim.sym.st_fill(i32(shape), shape.length, Number(value), dtypeCode(dt)), shape, dt);
  });
  register("ZerosLike", (b, { x }) => {
    return out(
      b,
      "ZerosLike",
      b.shim.sym.st_fill(i32(x.shape), x.shape.length, 0, dtypeCode(x.dtype)),
      x.shape,
      x.dtype,
    );
  });
  register("OnesLike", (b, { x }) => {
    return out(
      b,
      "OnesLike",
      b.shim.sym.st_fill(i32(x.shape), x.shape.length, 1, dtypeCode(x.dtype)),
      x.shape,
      x.dtype,
    );
  });
  register("Range", (b, _inputs, { start, stop, step, dtype }) => {
    const n = step === 0 || (stop - start) / step <= 0 ? 0 : Math.ceil(Math.abs((stop - start) / step));
    const dt = dtype ?? "float32";
    return out(b, "Range", b.shim.sym.st_range(start, step, BigInt(n), dtypeCode(dt)), [n], dt);
  });
}
