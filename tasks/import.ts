/**
 * Stage kind `import`: an image folder with labels → an STR LMDB.
 *
 * Layouts (`layout: auto` picks the first that matches):
 * - `real`: `IMG/N.<ext>` + `label/N.txt` (the layout of ../shared/data/real/*), in numeric order of N;
 * - `tsv`: `labels.tsv` lines `path<TAB>label`;
 * - `gt`: `gt.txt` lines `path label` (first whitespace or comma splits; ICDAR-style
 *   `"quoted"` labels are unquoted).
 *
 * Image bytes are stored as they are (no re-encoding). With `verify_images`
 * each image is decoded first; unreadable images, missing files and empty
 * labels are skipped and listed with the reason in the summary (or fail
 * the stage with `policy: error`). Labels are stored raw (trimmed of
 * surrounding whitespace); the loader applies the label protocol.
 */
import { extname, relative } from "node:path";
import { detectLayout, type FoundSample, type Layout, LAYOUTS, listSamples } from "../data/folder.ts";
import { boolean, integer, object, type ObjectSchema, string } from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";

export const importParams = object({
  layout: string<Layout>({ enum: LAYOUTS, default: "auto", description: "folder layout; auto detects it" }),
  labels_file: string({ optional: true, description: "labels file for tsv/gt layouts (default labels.tsv / gt.txt)" }),
  policy: string<"error" | "skip">({
    enum: ["error", "skip"],
    default: "skip",
    description: "unreadable images, missing files, empty labels: skip and list them (default) or fail",
  }),
  verify_images: boolean({ default: true, description: "decode every image and skip the undecodable ones" }),
  limit: integer({ min: 1, optional: true, description: "import only the first N samples" }),
});
export type ImportParams = typeof importParams extends ObjectSchema<infer T> ? T : never;

const kind = registerStageKind<ImportParams>({
  kind: "import",
  version: 1,
  description: "An image folder with labels (real IMG/+label/, labels.tsv or gt.txt) → an STR LMDB.",
  params: importParams,
  inputs: { source: { description: "the image folder (a `path:` input)" } },
  outputs: { lmdb: { description: "the STR LMDB", type: "dir" } },
  module: import.meta.url,
  async run(ctx: StageContext<ImportParams>) {
    const { createLmdb } = await import("../data/lmdb.ts");
    const { decodeImage, loadCanvas } = await import("../data/image.ts");
    const p = ctx.params;
    const source = ctx.input("source");
    const layout = p.layout === "auto" ? await detectLayout(source, p.labels_file) : p.layout;
    let found = await listSamples(source, layout, p.labels_file);
    if (p.limit !== undefined) found = found.slice(0, p.limit);
    ctx.log(`import ${source}: layout ${layout}, ${found.length} samples listed`);
    if (p.verify_images) await loadCanvas();
    const writer = await createLmdb(ctx.output("lmdb"));
    const skipped: { where: string; image: string; reason: string }[] = [];
    const byReason: Record<string, number> = {};
    const skip = (s: FoundSample, reason: string, code: string) => {
      const message = `${s.where}${s.image ? ` (${relative(source, s.image) || s.image})` : ""}: ${reason}`;
      if (p.policy === "error") throw new Error(`import ${source}: ${message}`);
      byReason[code] = (byReason[code] ?? 0) + 1;
      skipped.push({ where: s.where, image: s.image ? relative(source, s.image) : "", reason });
    };
    const formats: Record<string, number> = {};
    try {
      for (const [n, s] of found.entries()) {
        if (ctx.signal.aborted) throw new Error("import interrupted");
        if (n % 200 === 0) ctx.progress(`import ${n}/${found.length}`);
        if (s.problem) {
          skip(s, s.problem, s.problem === "empty label" ? "empty_label" : "unlisted");
          continue;
        }
        let bytes: Uint8Array;
        try {
          bytes = await Deno.readFile(s.image);
        } catch (e) {
          skip(s, `cannot read the image: ${(e as Error).message}`, "missing_image");
          continue;
        }
        if (bytes.length === 0) {
          skip(s, "empty image file", "empty_image");
          continue;
        }
        if (p.verify_images) {
          try {
            await decodeImage(bytes);
          } catch (e) {
            skip(s, (e as Error).message, "undecodable_image");
            continue;
          }
        }
        const ext = extname(s.image).toLowerCase() || "(none)";
        formats[ext] = (formats[ext] ?? 0) + 1;
        writer.add(bytes, s.label!);
      }
      if (writer.count === 0) throw new Error(`import ${source}: no readable samples (${found.length} listed)`);
      await writer.commit();
    } catch (e) {
      await writer.abort();
      throw e;
    }
    ctx.log(`wrote ${writer.count} samples; skipped ${skipped.length}`);
    for (const s of skipped.slice(0, 50)) ctx.log(`skipped ${s.where}: ${s.reason}`);
    const notes = skipped.length
      ? [
        `import: skipped ${skipped.length} of ${found.length} samples (${
          Object.entries(byReason).map(([k, v]) => `${k}: ${v}`).join(", ")
        })`,
      ]
      : [];
    return {
      summary: {
        source,
        layout,
        listed: found.length,
        written: writer.count,
        skipped: skipped.length,
        skipped_by_reason: byReason,
        unreadable: skipped.slice(0, 1000),
        formats,
      },
      notes,
    };
  },
});

export default kind;
export { detectLayout, listSamples };
