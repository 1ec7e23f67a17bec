/**
 * LMDB data for the train / evaluate stages, over data/loader.ts.
 *
 * - `openTrainData`: a step-indexed stream of training batches over the concatenation of the `train` inputs
 *   (the loader's `stream`: epoch e shuffled and augmented with hashSeed(seed, e), partial batches dropped).
 *   `batches(k)` skips the first k batches (decoded, not trained on), so a resumed run sees exactly the
 *   batches an uninterrupted one would.
 * - `openEvalData`: in-order, unaugmented batches of one data set.
 */
import type { Batch } from "../data/batch.ts";
import type { Protocol } from "../data/charset.ts";
import { type Dataset, openDataset } from "../data/loader.ts";
import { augmentOf, type ImageParams, imageSpecOf } from "../data/params.ts";
import type { DataParams } from "./data_params.ts";
import type { TrainData } from "./loop.ts";

export interface OpenedTrainData {
  /** Usable samples over all data sets. */
  size: number;
  dataset: Dataset;
  data: TrainData;
  close(): Promise<void>;
}

export async function openTrainData(
  paths: readonly string[],
  d: DataParams,
  batchSize: number,
  seed: number,
): Promise<OpenedTrainData> {
  const dataset = await openDataset(paths, {
    image: imageSpecOf(d.image),
    protocol: d.labels.protocol,
    maxLength: d.labels.max_length,
    unsupported: d.labels.unsupported,
    policy: d.bad_input,
  });
  if (dataset.size < batchSize) {
    await dataset.close();
    throw new Error(`${paths.join(", ")}: ${dataset.size} usable samples, fewer than one batch of ${batchSize}`);
  }
  const augment = augmentOf(d.augment);
  const data: TrainData = {
    async *batches(fromStep: number) {
      const stream = dataset.stream({ batchSize, seed, augment });
      try {
        for (let step = 0; step < fromStep; step++) await stream.next();
        for (let step = fromStep;; step++) {
          const r = await stream.next();
          if (r.done) throw new Error(`${paths.join(", ")}: training stream ended at step ${step}`);
          yield r.value;
        }
      } finally {
        await stream.return?.();
      }
    },
  };
  return { size: dataset.size, dataset, data, close: () => dataset.close() };
}

export interface EvalDataOptions {
  image: ImageParams;
  protocol: Protocol;
  maxLength: number;
  unsupported?: "remove" | "drop";
  policy?: "error" | "skip";
  limit?: number;
}

export interface OpenedEvalData {
  size: number;
  dataset: Dataset;
  batches(): AsyncIterable<Batch>;
  close(): Promise<void>;
}

export async function openEvalData(path: string, o: EvalDataOptions, batchSize: number): Promise<OpenedEvalData> {
  const dataset = await openDataset(path, {
    image: imageSpecOf(o.image),
    protocol: o.protocol,
    maxLength: o.maxLength,
    unsupported: o.unsupported,
    policy: o.policy,
    limit: o.limit,
  });
  return {
    size: dataset.size,
    dataset,
    batches: () => dataset.batches({ mode: "eval", batchSize }),
    close: () => dataset.close(),
  };
}
