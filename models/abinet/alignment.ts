/**
 * ABINet's gated vision–language fusion (`BaseAlignment`):
 *
 *     f   = σ(w_att([l; v]))          w_att: Linear(2d → d), features concatenated language first
 *     out = f·v + (1 − f)·l
 *     logits = cls(out)               cls: Linear(d → numClasses)
 *
 * Both inputs stay in the graph: the alignment loss trains the vision and the language model alike.
 * State-dict names: `w_att.{weight,bias}`, `cls.{weight,bias}`.
 */
import * as tf from "@tensorflow/tfjs";
import { Linear } from "../nn/layers.ts";
import type { Scope } from "../nn/params.ts";

export class BaseAlignment {
  readonly wAtt: Linear;
  readonly cls: Linear;

  constructor(scope: Scope, readonly dModel: number, readonly numClasses: number) {
    this.wAtt = new Linear(scope.child("w_att"), 2 * dModel, dModel);
    this.cls = new Linear(scope.child("cls"), dModel, numClasses);
  }

  /** `lFeature`, `vFeature` `[B, T, d]` → fused feature and logits `[B, T, numClasses]` (call inside a tidy). */
  apply(lFeature: tf.Tensor3D, vFeature: tf.Tensor3D): { feature: tf.Tensor3D; logits: tf.Tensor3D } {
    if (lFeature.shape.join() !== vFeature.shape.join()) {
      throw new Error(`models/abinet/alignment.ts: l_feature [${lFeature.shape}] ≠ v_feature [${vFeature.shape}]`);
    }
    const gate = tf.sigmoid(this.wAtt.apply(tf.concat([lFeature, vFeature], 2) as tf.Tensor3D));
    const feature = tf.add(tf.mul(gate, vFeature), tf.mul(tf.sub(1, gate), lFeature)) as tf.Tensor3D;
    return { feature, logits: this.cls.apply(feature) };
  }
}
