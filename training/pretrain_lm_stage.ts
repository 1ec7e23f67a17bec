/** The `pretrain_lm` stage's run (loaded lazily by tasks/pretrain_lm.ts): corpus, noise, BCN, loop, outputs. */
import { join } from "node:path";
import type { Charset } from "../data/charset.ts";
import { hashSeed, Rng } from "../data/random.ts";
import { mutateSpelling, type MutationParams } from "../data/spelling_mutation.ts";
import { buildCorpus, defaultTokens, textFileTokens } from "../data/text_corpus.ts";
import { resolveLanguageModel } from "../models/abinet/abinet_config.ts";
import { AbinetLanguageModel, LANGUAGE_FAMILY, type TextBatch } from "../models/abinet/language_model.ts";
import { decodeLogits } from "../models/decode.ts";
import type { StageContext, StageResult } from "../pipeline/stage_kind.ts";
import type { PretrainLmParams } from "../tasks/pretrain_lm.ts";
import { prepareBackend } from "./backend.ts";
import { CHECKPOINT_FORMAT, type CheckpointMeta } from "./checkpoint.ts";
import { type TrainData, trainLoop } from "./loop.ts";
import { MetricAccumulator, type TextMetrics } from "./metrics.ts";

export interface TextPair {
  clean: string;
  noisy: string;
}

/** Encodes pairs into a text batch (images are a [B, 1, 1, 1] placeholder: the language model reads none). */
export function textBatch(pairs: TextPair[], charset: Charset, maxLength: number, firstIndex = 1): TextBatch {
  const t = maxLength + 1, b = pairs.length;
  const labels = new Int32Array(b * t), inputLabels = new Int32Array(b * t);
  const lengths = new Int32Array(b), inputLengths = new Int32Array(b);
  pairs.forEach((p, i) => {
    labels.set(charset.encode(p.clean, maxLength), i * t);
    inputLabels.set(charset.encode(p.noisy, maxLength), i * t);
    lengths[i] = Math.min(Array.from(p.clean).length + 1, t);
    inputLengths[i] = Math.min(Array.from(p.noisy).length + 1, t);
  });
  return {
    images: new Float32Array(b),
    shape: [b, 1, 1, 1],
    labels,
    lengths,
    texts: pairs.map((p) => p.clean),
    indices: pairs.map((_, i) => firstIndex + i),
    inputLabels,
    inputLengths,
  };
}

/**
 * Batches of (noisy, clean) words: epoch e visits the words in a permutation seeded by (seed, e); the noise of
 * update s is seeded by (seed, s), so a batch depends on (seed, step) only and a resumed run repeats it.
 */
export function textTrainData(
  words: string[],
  charset: Charset,
  maxLength: number,
  batchSize: number,
  seed: number,
  mutation: MutationParams | undefined,
): TrainData {
  const n = words.length;
  if (n === 0) throw new Error("pretrain_lm: the corpus has no usable training words");
  let cached: { epoch: number; perm: Uint32Array } | undefined;
  const permutation = (epoch: number) => {
    if (cached?.epoch !== epoch) {
      const rng = new Rng(hashSeed(seed, "pretrain_lm-epoch", epoch));
      const perm = Uint32Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      cached = { epoch, perm };
    }
    return cached.perm;
  };
  return {
    async *batches(fromStep: number) {
      for (let s = fromStep;; s++) {
        const rng = new Rng(hashSeed(seed, "pretrain_lm-noise", s));
        const pairs: TextPair[] = [];
        for (let i = 0; i < batchSize; i++) {
          const k = s * batchSize + i;
          const clean = words[permutation(Math.floor(k / n))[k % n]];
          pairs.push({
            clean,
            noisy: mutation ? mutateSpelling(clean, rng, charset.chars, maxLength, mutation) : clean,
          });
        }
        yield textBatch(pairs, charset, maxLength, s * batchSize + 1);
      }
    },
  };
}

/** Scores spelling correction: the model's reading of each noisy word vs the clean word. */
export async function scoreCorrection(
  model: AbinetLanguageModel,
  pairs: TextPair[],
  charset: Charset,
  maxLength: number,
  batchSize: number,
): Promise<TextMetrics> {
  const acc = new MetricAccumulator();
  for (let i = 0; i < pairs.length; i += batchSize) {
    const chunk = pairs.slice(i, i + batchSize);
    const batch = textBatch(chunk, charset, maxLength);
    const logits = model.correct(batch.inputLabels, batch.inputLengths);
    try {
      const decoded = decodeLogits(await logits.data(), logits.shape, charset);
      decoded.forEach((d, j) => acc.add(chunk[j].clean, d.text, d.confidence));
    } finally {
      logits.dispose();
    }
  }
  return acc.result();
}

export async function runPretrainLm(ctx: StageContext<PretrainLmParams>): Promise<StageResult> {
  const p = ctx.params;
  const arch = resolveLanguageModel(p.architecture);
  const backend = await prepareBackend(p.backend, (l) => ctx.log(l));
  ctx.log(`backend ${backend.name} (${backend.details}), tfjs ${backend.tfjsVersion}`);
  const textPath = ctx.optionalInput("text");
  const tokens = textPath ? await textFileTokens(textPath) : defaultTokens();
  const corpus = buildCorpus(tokens, p.protocol, arch.max_length, p.held_out_fraction, p.max_words);
  const { charset } = corpus;
  const source = textPath ?? "the English word list (an-array-of-english-words)";
  ctx.log(
    `corpus ${source}: ${corpus.read} tokens, ${corpus.dropped} dropped, ${corpus.train.length} training and ` +
      `${corpus.heldOut.length} held-out words`,
  );
  const mutation = p.mutation.enabled ? p.mutation : undefined;
  const valRng = new Rng(hashSeed(p.seed, "pretrain_lm-val"));
  const valPairs: TextPair[] = corpus.heldOut.slice(0, p.val_samples).map((clean) => ({
    clean,
    noisy: mutation ? mutateSpelling(clean, valRng, charset.chars, arch.max_length, mutation) : clean,
  }));
  const unchanged = valPairs.filter((x) => x.clean === x.noisy).length;
  const stepsPerEpoch = Math.max(1, Math.ceil(corpus.train.length / p.batch_size));
  const steps = p.steps ?? Math.max(1, Math.round(p.epochs! * stepsPerEpoch));
  const model = new AbinetLanguageModel(arch, p.seed, charset.numClasses);
  const parameters = model.parameterCount();
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    model_family: LANGUAGE_FAMILY,
    model_config: arch as unknown as Record<string, unknown>,
    num_classes: charset.numClasses,
    data: { height: 0, width: 0, channels: 0, normalize: "none", protocol: p.protocol, max_length: arch.max_length },
    training: {
      params: p,
      stage: ctx.stageId,
      matrix: ctx.matrix,
      backend: backend.name,
      tfjs: backend.tfjsVersion,
      steps,
      train_words: corpus.train.length,
      corpus: textPath ? "text input" : "an-array-of-english-words",
      parameters,
    },
  };
  ctx.log(
    `BCN ${parameters} parameters; ${steps} steps of ${p.batch_size} words (${
      (steps / stepsPerEpoch).toFixed(2)
    } epochs)`,
  );
  const notes: string[] = [];
  try {
    const result = await trainLoop({
      model,
      data: textTrainData(corpus.train, charset, arch.max_length, p.batch_size, p.seed, mutation),
      steps,
      stepsPerEpoch,
      lr: p.lr,
      schedule: p.schedule,
      clipGradNorm: p.clip_grad_norm,
      seed: p.seed,
      scratch: ctx.scratch,
      checkpointEvery: p.checkpoint_every,
      validateEvery: p.validate_every,
      logEvery: p.log_every,
      validate: valPairs.length > 0
        ? () => scoreCorrection(model, valPairs, charset, arch.max_length, p.batch_size)
        : undefined,
      meta,
      signal: ctx.signal,
      progress: (m) => ctx.progress(m),
      log: (m) => ctx.log(m),
    });
    if (result.resumedFrom > 0) notes.push(`resumed from the checkpoint at step ${result.resumedFrom}`);
    if (valPairs.length === 0) notes.push("no held-out words: best.safetensors is the last checkpoint");
    const outDir = ctx.output("model");
    await Deno.mkdir(outDir, { recursive: true });
    await Deno.copyFile(result.bestPath, join(outDir, "best.safetensors"));
    await Deno.copyFile(result.lastPath, join(outDir, "last.safetensors"));
    const config = {
      ...meta,
      best: { step: result.bestStep, val: result.bestMetrics ?? null },
      last: { step: result.steps, val: result.lastMetrics ?? null, loss: result.finalLoss },
      held_out: { words: valPairs.length, unchanged_by_noise: valPairs.length ? unchanged / valPairs.length : null },
    };
    const configPath = join(outDir, "config.json");
    await Deno.writeTextFile(`${configPath}.partial`, JSON.stringify(config, null, 2) + "\n");
    await Deno.rename(`${configPath}.partial`, configPath);
    await Deno.copyFile(result.curvePath, ctx.output("curve"));
    return {
      summary: {
        steps: result.steps,
        final_loss: result.finalLoss,
        parameters,
        train_words: corpus.train.length,
        held_out_words: valPairs.length,
        // Word accuracy of reading the noisy held-out words back, and the share the noise left unchanged.
        held_out_correction_accuracy: result.bestMetrics?.word_accuracy ?? null,
        held_out_unchanged_by_noise: valPairs.length ? unchanged / valPairs.length : null,
        backend: backend.name,
      },
      notes,
    };
  } finally {
    model.dispose();
  }
}
