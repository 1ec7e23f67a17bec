/**
 * Stage kind `stats`: statistics of an LMDB or an image folder (sample
 * count, label length histogram, character frequency, image formats and
 * sizes) → `markdown` (stats.md) and `json` (stats.json).
 */
import { integer, object, type ObjectSchema } from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";

export const statsParams = object({
  limit: integer({ min: 1, optional: true, description: "examine only the first N samples (the count stays exact)" }),
  top_chars: integer({ min: 1, default: 100, description: "characters listed in the Markdown frequency table" }),
});
export type StatsParams = typeof statsParams extends ObjectSchema<infer T> ? T : never;

const kind = registerStageKind<StatsParams>({
  kind: "stats",
  version: 1,
  description: "Sample count, label lengths, character frequency and image sizes of an LMDB or image folder.",
  params: statsParams,
  inputs: { data: { description: "an STR LMDB (stage output) or an image folder (`path:` input)" } },
  outputs: {
    markdown: { description: "stats.md: the summary as Markdown (first line: the sample count)", type: "file" },
    json: { description: "stats.json: the same numbers as JSON", type: "file" },
  },
  module: import.meta.url,
  async run(ctx: StageContext<StatsParams>) {
    const { computeStats, statsMarkdown } = await import("../data/stats.ts");
    const input = ctx.inputs.data?.[0];
    const path = ctx.input("data");
    const stats = await computeStats(path, {
      limit: ctx.params.limit,
      signal: ctx.signal,
      progress: (n, total) => ctx.progress(`stats ${n}/${total}`),
    });
    const name = input && !input.stageId.startsWith("path:") ? `${input.stageId}.${input.output}` : undefined;
    // No absolute paths in the outputs: they would differ between machines.
    const shown = name ?? input?.stageId ?? "data";
    const md = statsMarkdown({ ...stats, source: shown }, {
      topChars: ctx.params.top_chars,
      name: shown,
      showSource: false,
    });
    await writeAtomic(ctx.output("markdown"), md);
    await writeAtomic(ctx.output("json"), JSON.stringify({ ...stats, source: shown }, null, 1) + "\n");
    ctx.log(md.split("\n")[0]);
    const problemCount = Object.values(stats.problems).reduce((a, b) => a + b, 0);
    return {
      notes: problemCount
        ? [
          `stats ${shown}: ${Object.entries(stats.problems).map(([k, v]) => `${k}: ${v}`).join(", ")}${
            stats.notes?.length ? ` (${stats.notes[0]})` : ""
          }`,
        ]
        : [],
      summary: {
        count: stats.count,
        type: stats.type,
        problems: stats.problems,
        mean_label_length: stats.labels?.length.mean,
        median_height: stats.images.height.median,
      },
    };
  },
});

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

export default kind;
