/**
 * The data loader: STR LMDB → label normalisation → decode → resize →
 * augment → normalise → `Batch` (NHWC float32), seeded and prefetching.
 *
 * ```ts
 * const ds = await openDataset(path, { image, protocol: 36, policy: "skip" });
 * for await (const batch of ds.batches({ mode: "train", batchSize: 64, seed: epochSeed, augment })) …
 * for await (const batch of ds.batches({ mode: "eval", batchSize: 64 })) …   // all samples in order
 * ds.summary();  // label and bad-sample counts (grows as undecodable images are met)
 * await ds.close();
 * ```
 *
 * Opening reads every label once (not the images): samples whose label the
 * protocol drops are left out up front, with counts by reason. Images are
 * decoded as batches are made; with policy `skip` a bad image is counted and
 * replaced by the next sample of the order, so batches stay full and the same
 * seed still gives the same batches.
 *
 * Determinism: the order is a Fisher–Yates shuffle seeded by `seed`; each
 * sample's augmentation is drawn from its own PRNG seeded by (seed, index),
 * so results depend neither on decode timing nor on the prefetch depth.
 *
 * Prefetch: a producer fills a queue of up to `prefetch` ready batches; the
 * images of a batch are decoded concurrently (canvas decodes off the main
 * thread), so decoding overlaps the consumer's work whenever it awaits.
 */
import type { Batch } from "./batch.ts";
import { type AugmentParams, augmentResize } from "./augment.ts";
import { type Charset, charsetFor, LabelCounts, MAX_LENGTH, type Protocol } from "./charset.ts";
import {
  type DecodedImage,
  decodeImage,
  DEFAULT_IMAGE,
  type ImageSpec,
  loadCanvas,
  normalizeInto,
  resizeNormalizeInto,
} from "./image.ts";
import { type BadInputPolicy, BadSamples, DataError, type LmdbReader, openLmdb } from "./lmdb.ts";
import { hashSeed, Rng } from "./random.ts";

export interface DatasetOptions {
  image?: Partial<ImageSpec>;
  /** Label protocol (default 36). */
  protocol?: Protocol;
  /** Max label length (default 25); longer labels are dropped. */
  maxLength?: number;
  /** Characters outside the protocol: `remove` (default, as ABINet) or `drop` the sample. */
  unsupported?: "remove" | "drop";
  /** Bad samples: `error` (default) throws naming the sample; `skip` counts them. */
  policy?: BadInputPolicy;
  /** Use only the first `limit` usable samples (in index order; eager scan only). */
  limit?: number;
  /**
   * `eager`: read every label when opening (exact size and label counts up front; texts listed);
   * `lazy`: check labels as samples are met (for MJ + ST scale: no open-time scan, little memory);
   * `auto` (default): eager up to 1 M stored samples.
   */
  scan?: "auto" | "eager" | "lazy";
}

export interface BatchOptions {
  /** `train`: shuffled, augmented (when `augment` is given), last partial batch dropped by default. `eval`: in order, no augmentation, all samples. */
  mode: "train" | "eval";
  batchSize: number;
  /** Seed of this epoch's order and augmentation (train mode). */
  seed?: number;
  augment?: AugmentParams;
  /** Ready batches kept ahead of the consumer (default 2). */
  prefetch?: number;
  /** Default: true in train mode, false in eval mode. */
  dropLast?: boolean;
}

export interface SourceSummary {
  path: string;
  /** `num-samples` of the LMDB. */
  stored: number;
  /** Samples kept after label normalisation (before image problems). */
  usable: number;
  labels: Record<string, unknown>;
  bad: Record<string, unknown>;
}

export interface DatasetSummary {
  /** Totals over the sources. */
  stored: number;
  /** Eager scan: samples whose label the protocol keeps. Lazy scan: stored minus the drops met so far. */
  usable: number;
  scan: "eager" | "lazy";
  /** Samples left out so far: labels dropped by the protocol + bad samples met. */
  dropped: number;
  protocol: Protocol;
  maxLength: number;
  sources: SourceSummary[];
}

export interface Dataset {
  /** The LMDB directories, in the order given. */
  readonly paths: readonly string[];
  /** Usable samples (label kept by the protocol), over all sources; with a lazy scan, the stored count. */
  readonly size: number;
  readonly scan: "eager" | "lazy";
  readonly charset: Charset;
  readonly image: ImageSpec;
  readonly maxLength: number;
  /**
   * Per usable sample, in source then index order: its source (position in `paths`), LMDB index
   * (1-based), normalised text. Empty with a lazy scan.
   */
  readonly sources: readonly number[];
  readonly indices: readonly number[];
  readonly texts: readonly string[];
  summary(): DatasetSummary;
  /** One pass over the data set (an epoch in train mode). */
  batches(opts: BatchOptions): AsyncIterableIterator<Batch>;
  /** Train batches forever: epoch e uses seed hashSeed(seed, e). */
  stream(opts: Omit<BatchOptions, "mode"> & { seed: number }): AsyncIterableIterator<Batch>;
  close(): Promise<void>;
}

/**
 * Opens one LMDB, or several read as one data set (e.g. MJ + ST). Batches
 * carry each sample's LMDB index in `indices` and its source in `sources`.
 */
export async function openDataset(path: string | readonly string[], opts: DatasetOptions = {}): Promise<Dataset> {
  const paths = typeof path === "string" ? [path] : [...path];
  if (paths.length === 0) throw new Error("openDataset: no LMDB paths given");
  const image: ImageSpec = { ...DEFAULT_IMAGE, ...opts.image };
  if (image.channels !== 1 && image.channels !== 3) throw new Error(`image channels must be 1 or 3`);
  const protocol = opts.protocol ?? 36;
  const maxLength = opts.maxLength ?? MAX_LENGTH;
  const charset = charsetFor(protocol);
  const policy = opts.policy ?? "error";
  await loadCanvas();
  const readers: LmdbReader[] = [];
  const bads: BadSamples[] = [];
  const labelCounts: LabelCounts[] = [];
  const usable: number[] = [];
  const sources: number[] = [];
  const indices: number[] = [];
  const texts: string[] = [];
  let scan: "eager" | "lazy" = opts.scan === "lazy" ? "lazy" : "eager";
  try {
    for (const p of paths) readers.push(await openLmdb(p, { policy }));
    const stored = readers.reduce((a, r) => a + r.size, 0);
    if ((opts.scan ?? "auto") === "auto" && stored > 1_000_000 && opts.limit === undefined) scan = "lazy";
    for (const [src, reader] of readers.entries()) {
      const bad = new BadSamples(policy, reader.path);
      bads.push(bad);
      const labels = new LabelCounts();
      labelCounts.push(labels);
      if (reader.inferredSize) {
        bad.report("missing_num_samples", "no num-samples key; size inferred from the label keys");
      }
      if (reader.declaredSize !== undefined) bad.report("num_samples_mismatch", reader.sizeNote ?? "");
      if (scan === "lazy") continue;
      let kept = 0;
      for (let i = 1; i <= reader.size && (opts.limit === undefined || indices.length < opts.limit); i++) {
        const s = reader.read(i);
        if (!s.ok) {
          bad.report(s.reason, s.detail, i);
          continue;
        }
        const r = charset.normalize(s.sample.label, { maxLength, unsupported: opts.unsupported });
        labels.add(r, s.sample.label, i);
        if (!r.ok) continue;
        sources.push(src);
        indices.push(i);
        texts.push(r.text);
        kept++;
      }
      usable.push(kept);
    }
  } catch (e) {
    await Promise.all(readers.map((r) => r.close()));
    throw e;
  }
  // Sample ids: positions in `indices` (eager), or 0..stored−1 over the sources in order (lazy).
  const offsets: number[] = [];
  let total = 0;
  for (const r of readers) (offsets.push(total), total += r.size);
  const count = scan === "eager" ? indices.length : total;
  const locate = (id: number): [number, number] => {
    if (scan === "eager") return [sources[id], indices[id]];
    let src = readers.length - 1;
    while (offsets[src] > id) src--;
    return [src, id - offsets[src] + 1];
  };
  let open = true;
  const known = new Set<number>(); // sample ids found bad (or, lazily, with a dropped label)
  const seen = scan === "lazy" ? new Uint8Array(total) : undefined; // lazily: labels counted once

  const loadSample = async (id: number): Promise<{ img: DecodedImage; text: string } | undefined> => {
    if (known.has(id)) return undefined;
    if (!open) throw new Error(`${paths.join(", ")}: data set is closed`);
    const [src, index] = locate(id);
    const s = readers[src].read(index);
    if (!s.ok) {
      known.add(id);
      bads[src].report(s.reason, s.detail, index);
      return undefined;
    }
    let text: string;
    if (scan === "eager") {
      text = texts[id];
    } else {
      const r = charset.normalize(s.sample.label, { maxLength, unsupported: opts.unsupported });
      if (!seen![id]) {
        seen![id] = 1;
        labelCounts[src].add(r, s.sample.label, index);
      }
      if (!r.ok) {
        known.add(id);
        return undefined;
      }
      text = r.text;
    }
    try {
      return { img: await decodeImage(s.sample.image), text };
    } catch (e) {
      known.add(id);
      bads[src].report("undecodable_image", (e as Error).message, index);
      return undefined;
    }
  };

  async function* produce(order: ArrayLike<number>, o: BatchOptions, seed: number): AsyncGenerator<Batch> {
    const { height: H, width: W, channels: C } = image;
    const per = H * W * C;
    const rgb = new Float32Array(H * W * 3);
    const dropLast = o.dropLast ?? o.mode === "train";
    const augment = o.mode === "train" ? o.augment : undefined;
    let pos = 0;
    while (pos < order.length) {
      const picked: { id: number; img: DecodedImage; text: string }[] = [];
      while (picked.length < o.batchSize && pos < order.length) {
        const want = Math.min(o.batchSize - picked.length, order.length - pos);
        const chunk = Array.from({ length: want }, (_, k) => order[pos + k]);
        pos += want;
        const loaded = await Promise.all(chunk.map(loadSample));
        for (let k = 0; k < chunk.length; k++) {
          const l = loaded[k];
          if (l) picked.push({ id: chunk[k], ...l });
        }
      }
      if (picked.length === 0 || (dropLast && picked.length < o.batchSize)) return;
      const B = picked.length;
      const batch: Batch = {
        images: new Float32Array(B * per),
        shape: [B, H, W, C],
        labels: new Int32Array(B * (maxLength + 1)),
        lengths: new Int32Array(B),
        texts: [],
        indices: [],
        sources: [],
      };
      for (let b = 0; b < B; b++) {
        const { id, img, text } = picked[b];
        const [source, index] = locate(id);
        if (augment) {
          augmentResize(img, H, W, rgb, new Rng(hashSeed(seed, source, index)), augment);
          normalizeInto(rgb, image, batch.images, b * per);
        } else {
          resizeNormalizeInto(img, image, batch.images, b * per);
        }
        batch.labels.set(charset.encode(text, maxLength), b * (maxLength + 1));
        batch.lengths[b] = Math.min(text.length + 1, maxLength + 1);
        batch.texts.push(text);
        batch.indices.push(index);
        batch.sources!.push(source);
      }
      yield batch;
    }
  }

  /** Runs `produce` ahead of the consumer with a bounded queue. */
  async function* prefetched(gen: AsyncGenerator<Batch>, depth: number): AsyncGenerator<Batch> {
    if (depth <= 0) {
      yield* gen;
      return;
    }
    const queue: IteratorResult<Batch>[] = [];
    let failure: { error: unknown } | undefined;
    let wake: (() => void) | undefined;
    let space: (() => void) | undefined;
    let stopped = false;
    const pump = (async () => {
      try {
        while (!stopped) {
          if (queue.length >= depth) {
            await new Promise<void>((r) => (space = r));
            continue;
          }
          const r = await gen.next();
          queue.push(r);
          wake?.();
          if (r.done) return;
        }
      } catch (e) {
        failure = { error: e };
        wake?.();
      }
    })();
    try {
      while (true) {
        if (queue.length === 0 && !failure) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (queue.length > 0) {
          const r = queue.shift()!;
          space?.();
          space = undefined;
          if (r.done) return;
          yield r.value;
        } else if (failure) {
          throw failure.error;
        }
      }
    } finally {
      stopped = true;
      space?.();
      await pump;
      await gen.return(undefined);
    }
  }

  const orderFor = (o: BatchOptions, seed: number): Int32Array => {
    const order = new Int32Array(count);
    for (let k = 0; k < count; k++) order[k] = k;
    if (o.mode === "train") {
      const rng = new Rng(hashSeed(seed, 0x5eed));
      for (let i = count - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
    return order;
  };

  const check = (o: BatchOptions) => {
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new Error(`batchSize must be ≥ 1, got ${o.batchSize}`);
  };

  const ds: Dataset = {
    paths: readers.map((r) => r.path),
    size: count,
    scan,
    charset,
    image,
    maxLength,
    sources,
    indices,
    texts,
    summary: () => ({
      stored: total,
      usable: scan === "eager" ? indices.length : total - labelCounts.reduce((a, l) => a + l.droppedTotal, 0),
      scan,
      dropped: labelCounts.reduce((a, l) => a + l.droppedTotal, 0) + bads.reduce((a, b) => a + b.total, 0),
      protocol,
      maxLength,
      sources: readers.map((r, k) => ({
        path: r.path,
        stored: r.size,
        usable: scan === "eager" ? usable[k] : r.size - labelCounts[k].droppedTotal,
        labels: labelCounts[k].toJSON(),
        bad: bads[k].toJSON(),
      })),
    }),
    batches(o: BatchOptions): AsyncIterableIterator<Batch> {
      check(o);
      const seed = o.seed ?? 0;
      return prefetched(produce(orderFor(o, seed), o, seed), o.prefetch ?? 2);
    },
    stream(o): AsyncIterableIterator<Batch> {
      check({ ...o, mode: "train" });
      if (count === 0) throw new DataError(paths.join(", "), "empty", "no usable samples to stream");
      return (async function* () {
        for (let epoch = 0;; epoch++) {
          let any = false;
          for await (const b of ds.batches({ ...o, mode: "train", seed: hashSeed(o.seed, epoch) })) {
            any = true;
            yield b;
          }
          if (!any) {
            throw new DataError(
              paths.join(", "),
              "empty",
              `no full batch of ${o.batchSize} in an epoch (${count} samples)`,
            );
          }
        }
      })();
    },
    async close() {
      if (!open) return;
      open = false;
      await Promise.all(readers.map((r) => r.close()));
    },
  };
  return ds;
}
