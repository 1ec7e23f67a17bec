/**
 * ConCLR's projection head (independent implementation of
 * `../shared/fixtures/README.md` §3.4): maps the attention vectors (glimpses)
 * [B, T, in] to L2-normalised embeddings [B, T, out].
 *
 * - `mlp`: Linear(in, in) → ReLU → Linear(in, out); weights `head.0.*`, `head.2.*` under the scope.
 * - `linear`: Linear(in, out); weights `head.*`.
 * - then x / max(‖x‖₂, 1e-12) over the last dimension (F.normalize, dim=-1, as the fixture pins it).
 *
 * The weights live in the model's `models/nn` ParamStore (checkpoints in PyTorch layout); ConCLR's
 * state-dict prefix is `projection_head`, so the model creates the head under that scope.
 */
import * as tf from "@tensorflow/tfjs";
import { Linear } from "../nn/layers.ts";
import type { Scope } from "../nn/params.ts";

export type ProjectionKind = "mlp" | "linear";

export interface ProjectionHeadOptions {
  inputDim: number;
  outputDim: number;
  kind: ProjectionKind;
}

export class ProjectionHead {
  readonly layers: Linear[];

  constructor(scope: Scope, readonly options: ProjectionHeadOptions) {
    const { inputDim, outputDim, kind } = options;
    const head = scope.child("head");
    if (kind === "mlp") {
      this.layers = [new Linear(head.child(0), inputDim, inputDim), new Linear(head.child(2), inputDim, outputDim)];
    } else if (kind === "linear") {
      this.layers = [new Linear(head, inputDim, outputDim)];
    } else {
      throw new Error(`models/conclr/projection_head.ts: unknown projection "${kind}" (mlp | linear)`);
    }
  }

  /** [B, T, in] → [B, T, out] with unit rows (differentiable; call inside a tidy or gradient scope). */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    const dim = x.shape[2];
    if (dim !== this.options.inputDim) {
      throw new Error(`models/conclr/projection_head.ts: input has ${dim} features, expected ${this.options.inputDim}`);
    }
    return tf.tidy(() => {
      let h: tf.Tensor3D = x;
      this.layers.forEach((layer, i) => {
        h = layer.apply(h);
        if (i < this.layers.length - 1) h = tf.relu(h);
      });
      const norm = tf.sqrt(tf.sum(tf.square(h), -1, true));
      return tf.div(h, tf.maximum(norm, 1e-12));
    });
  }
}
