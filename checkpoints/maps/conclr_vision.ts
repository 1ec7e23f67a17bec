/**
 * `conclr_vision` ← ConCLR's vision model (modules/model_conclr_vision.py, github.com/InsaneOnion/ConCLR): the
 * ABINet `BaseVision` names plus `projection_head.head.*` (mlp: `head.0`, `head.2`; linear: `head`). A
 * checkpoint that wraps the vision model as `vision.` keeps `projection_head.` at the top; both forms load.
 * The projection head's kind and width are read off its tensors.
 */
import { registerKeyMap } from "../key_maps.ts";
import { abinetVisionConfig } from "./abinet_vision.ts";

registerKeyMap({
  family: "conclr_vision",
  source: "ConCLR modules/model_conclr_vision.py (BaseVision + ProjectionHead)",
  stripPrefixes: ["vision."],
  config(ctx) {
    const config = abinetVisionConfig(ctx);
    const mlp = ctx.tensors.get("projection_head.head.2.weight");
    const linear = ctx.tensors.get("projection_head.head.weight");
    if (mlp) Object.assign(config, { projection: "mlp", projection_dim: mlp.shape[0] });
    else if (linear) Object.assign(config, { projection: "linear", projection_dim: linear.shape[0] });
    return config;
  },
  data: { height: 32, width: 128, channels: 3, normalize: "imagenet", protocol: 36, max_length: 25 },
});
