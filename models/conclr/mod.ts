/**
 * Registers the `conclr_vision` model family (see `model.ts`) and re-exports ConCLR's parts:
 * ConAug (`conaug.ts`), the projection head (`projection_head.ts`) and the contrastive loss
 * (`contrastive_loss.ts`).
 */
import { registerModelFamily } from "../recognizer.ts";
import { conclrVisionFamily } from "./model.ts";

export * from "./conaug.ts";
export * from "./contrastive_loss.ts";
export * from "./projection_head.ts";
export {
  CONCLR_DEFAULTS,
  type ConclrFields,
  type ConclrVisionConfig,
  ConclrVisionModel,
  resolveConclrConfig,
} from "./model.ts";

registerModelFamily(conclrVisionFamily);
