/** Checkpoint files for tests: a model saved as the train stage would, without training it. */
import type { Recognizer } from "../models/recognizer.ts";
import { CHECKPOINT_FORMAT, type DataConfig, saveCheckpoint } from "./checkpoint.ts";

/** The data config of a 32×128 RGB model with the 36-character protocol and 25-character labels. */
export const TEST_DATA_CONFIG: DataConfig = {
  height: 32,
  width: 128,
  channels: 3,
  normalize: "imagenet",
  protocol: 36,
  max_length: 25,
};

/**
 * Saves `model` at `path` with the meta of an untrained run: its family and class count from the model, `config`
 * as given (default: the model's full config), `data` over TEST_DATA_CONFIG.
 */
export async function saveTestCheckpoint(
  path: string,
  model: Recognizer,
  { config = model.config, data = {} }: { config?: Record<string, unknown>; data?: Partial<DataConfig> } = {},
): Promise<void> {
  await saveCheckpoint(path, {
    model,
    meta: {
      format: CHECKPOINT_FORMAT,
      model_family: model.family,
      model_config: config,
      num_classes: model.numClasses,
      data: { ...TEST_DATA_CONFIG, ...data },
      training: {},
    },
  });
}
