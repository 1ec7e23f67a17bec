/**
 * Stage kind `import`: an image folder with labels → an STR LMDB.
 *
 * Layouts (`layout: auto` picks the first that matches):
 * - `lmdb`: an STR LMDB (`data.mdb`), copied sample by sample with the same checks (e.g. to pick
 *   `subdir: evaluation/IIIT5k_3000` out of a downloaded archive, or to clean a Python-made LMDB);
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
import { join, relative } from "node:path";
import { detectLayout, type Layout, LAYOUTS, listSamples } from "../data/folder.ts";
import { BadSamples } from "../data/lmdb.ts";
import { boolean, integer, object, type ObjectSchema, string } from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";

export const importParams = object({
  layout: string<Layout>({ enum: LAYOUTS, default: "auto", description: "folder layout; auto detects it" }),
  labels_file: string({ optional: true, description: "labels file for tsv/gt layouts (default labels.tsv / gt.txt)" }),
  subdir: string({ optional: true, description: "read this folder inside the source (e.g. evaluation/IIIT5k_3000)" }),
  policy: string<"error" | "skip">({
    enum: ["error", "skip"],
    default: "skip",
    description: "unreadable images, missing files, empty labels: skip and list them (default) or fail",
  }),
  verify_images: boolean({ default: true, description: "decode every image and skip the undecodable ones" }),
  limit: integer({ min: 1, optional: true, description: "import only the first N samples (after `offset`)" }),
  offset: integer({
    min: 0,
    default: 0,
    description: "skip the first N samples, e.g. to train on the rest of a folder whose first N validate",
  }),
  name: string({
    optional: true,
    minLength: 1,
    description: "the data set's name in evaluation metrics and reports, e.g. IC13_857 (default: the stage id)",
  }),
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
    const { createLmdb, openLmdb } = await import("../data/lmdb.ts");
    const { decodeImage, loadCanvas, probeImage } = await import("../data/image.ts");
    const p = ctx.params;
    const input = ctx.input("source");
    if (p.subdir && p.subdir.split(/[\\/]/).includes("..")) {
      throw new Error(`import: subdir ${p.subdir} escapes the source`);
    }
    const source = p.subdir ? join(input, p.subdir) : input;
    const layout = p.layout === "auto" ? await detectLayout(source, p.labels_file) : p.layout;
    if (p.verify_images) await loadCanvas();
    const writer = await createLmdb(ctx.output("lmdb"));
    const skipped: { where: string; image: string; reason: string }[] = [];
    const byReason: Record<string, number> = {};
    const skip = (where: string, image: string, reason: string, code: string) => {
      const message = `${where}${image && image !== where ? ` (${image})` : ""}: ${reason}`;
      if (p.policy === "error") throw new Error(`import ${source}: ${message}`);
      byReason[code] = (byReason[code] ?? 0) + 1;
      skipped.push({ where, image, reason });
    };
    const formats: Record<string, number> = {};
    /** Checks and writes one sample; false when skipped. */
    const accept = async (where: string, image: string, bytes: Uint8Array, label: string) => {
      if (bytes.length === 0) return skip(where, image, "empty image", "empty_image");
      if (p.verify_images) {
        try {
          await decodeImage(bytes);
        } catch (e) {
          return skip(where, image, (e as Error).message, "undecodable_image");
        }
      }
      const format = probeImage(bytes).format;
      formats[format] = (formats[format] ?? 0) + 1;
      writer.add(bytes, label);
    };
    let listed = 0;
    /** Problems of the data set as a whole (num-samples missing or wrong). */
    const warnings: string[] = [];
    let declared: number | undefined;
    try {
      if (layout === "lmdb") {
        // The copy is about as large as the source's data file.
        const { ensureFreeSpace } = await import("../pipeline/disk.ts");
        const size = (await Deno.stat(join(source, "data.mdb"))).size;
        await ensureFreeSpace(ctx.output("lmdb"), size, `import ${source}`);
        const bad = new BadSamples("skip", source);
        const reader = await openLmdb(source, { policy: p.policy, bad });
        try {
          // Not a skipped sample: a note of its own (with policy error, openLmdb has thrown already).
          if (reader.sizeNote) warnings.push(`${reader.sizeNote}`);
          if (reader.declaredSize !== undefined) declared = reader.declaredSize;
          const last = Math.min(reader.size, p.offset + (p.limit ?? Infinity));
          listed = Math.max(0, last - p.offset);
          ctx.log(`import ${source}: layout lmdb, ${reader.size} samples`);
          for (let i = p.offset + 1; i <= last; i++) {
            if (ctx.signal.aborted) throw new Error("import interrupted");
            if (i % 500 === 0) ctx.progress(`import ${i}/${listed}`);
            const s = reader.read(i);
            if (!s.ok) skip(`sample ${i}`, "", s.detail, s.reason);
            else await accept(`sample ${i}`, "", s.sample.image, s.sample.label);
          }
        } finally {
          await reader.close();
        }
      } else {
        let found = await listSamples(source, layout, p.labels_file);
        found = found.slice(p.offset, p.limit !== undefined ? p.offset + p.limit : undefined);
        listed = found.length;
        ctx.log(`import ${source}: layout ${layout}, ${found.length} samples listed`);
        for (const [n, s] of found.entries()) {
          if (ctx.signal.aborted) throw new Error("import interrupted");
          if (n % 200 === 0) ctx.progress(`import ${n}/${found.length}`);
          const image = s.image ? relative(source, s.image) || s.image : "";
          if (s.problem) {
            skip(s.where, image, s.problem, s.code ?? (s.problem === "empty label" ? "empty_label" : "unlisted"));
            continue;
          }
          let bytes: Uint8Array;
          try {
            bytes = await Deno.readFile(s.image);
          } catch (e) {
            skip(s.where, image, `cannot read the image: ${(e as Error).message}`, "missing_image");
            continue;
          }
          await accept(s.where, image, bytes, s.label!);
        }
      }
      if (writer.count === 0) throw new Error(`import ${source}: no readable samples (${listed} listed)`);
      await writer.commit();
    } catch (e) {
      await writer.abort();
      throw e;
    }
    ctx.log(`wrote ${writer.count} samples; skipped ${skipped.length}`);
    for (const s of skipped.slice(0, 50)) ctx.log(`skipped ${s.where}: ${s.reason}`);
    const notes = [
      ...warnings.map((w) => `import: ${w}; wrote ${writer.count} samples`),
      ...(skipped.length
        ? [
          `import: skipped ${skipped.length} of ${listed} samples (${
            Object.entries(byReason).map(([k, v]) => `${k}: ${v}`).join(", ")
          })`,
        ]
        : []),
    ];
    return {
      summary: {
        // As the experiment names it (an absolute path would differ between machines).
        source: `${ctx.inputs.source?.[0]?.stageId ?? "source"}${p.subdir ? `/${p.subdir}` : ""}`,
        layout,
        listed,
        ...(declared !== undefined ? { declared_num_samples: declared } : {}),
        written: writer.count,
        skipped: skipped.length,
        skipped_by_reason: byReason,
        unreadable: skipped.slice(0, 1000),
        formats,
        ...(warnings.length ? { warnings } : {}),
      },
      notes,
    };
  },
});

export default kind;
export { detectLayout, listSamples };
