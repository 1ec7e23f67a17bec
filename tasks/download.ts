/**
 * Stage kind `download`: fetches a file over HTTP(S), verifies its sha256,
 * and extracts it when it is a zip or tar(.gz) archive.
 *
 * - The expected `sha256` is mandatory; `insecure_skip_verify: true` is the
 *   explicit opt-out for unverified sources (noted in the stage's notes).
 * - The partial file lives in `ctx.scratch`, so an interrupted or failed
 *   attempt resumes with a Range request; a server that ignores Range
 *   restarts the file. Network errors, 408, 429 and 5xx are retried with
 *   exponential backoff; other HTTP errors fail at once.
 * - Extraction refuses absolute paths, `..` escapes, symlinks pointing out
 *   of the output and writes through symlinks (see data/archive.ts).
 *
 * Output `data` is a directory: the extracted tree, or the downloaded file
 * (under `filename`) when there is nothing to extract.
 */
import { dirname } from "node:path";
import { ensureFreeSpace } from "../pipeline/disk.ts";
import { boolean, integer, number, object, type ObjectSchema, string } from "../pipeline/schema.ts";
import { registerStageKind, type StageContext } from "../pipeline/stage_kind.ts";

export const downloadParams = object({
  url: string({ pattern: /^https?:\/\/\S+$/, description: "http(s) URL" }),
  sha256: string({ pattern: /^[0-9a-fA-F]{64}$/, optional: true, description: "expected sha256 of the file (hex)" }),
  insecure_skip_verify: boolean({ default: false, description: "accept the file without a sha256 (unverified!)" }),
  filename: string({
    pattern: /^[^/\\]+$/,
    optional: true,
    description: "file name to save as (default: the URL's last path segment)",
  }),
  extract: string<"auto" | "none" | "zip" | "tar" | "tar.gz">({
    enum: ["auto", "none", "zip", "tar", "tar.gz"],
    default: "auto",
    description: "auto: extract zip/tar/tar.gz recognised by content; none: keep the file",
  }),
  strip_components: integer({ min: 0, default: 0, description: "leading path components removed when extracting" }),
  retries: integer({ min: 0, default: 5, description: "retries after a failed request" }),
  backoff_s: number({ min: 0, default: 2, description: "first retry delay in seconds (doubles, max 60 s)" }),
  timeout_s: number({ min: 0.1, default: 60, description: "give up on a request idle this long" }),
});
export type DownloadParams = typeof downloadParams extends ObjectSchema<infer T> ? T : never;

class Permanent extends Error {}

function fileNameOf(url: string): string {
  const last = decodeURIComponent(new URL(url).pathname.split("/").filter(Boolean).pop() ?? "");
  return /^[^/\\]+$/.test(last) && last !== "." && last !== ".." ? last : "download";
}

const fmtBytes = (n: number) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;

export interface FetchReport {
  bytes: number;
  attempts: number;
  resumedFrom: number;
}

/**
 * Downloads `url` into `part`, resuming from its current size. Retries
 * transient failures; returns when the file is complete.
 */
export async function fetchResumable(
  url: string,
  part: string,
  opts: {
    retries: number;
    backoffS: number;
    timeoutS: number;
    signal?: AbortSignal;
    log?: (m: string) => void;
    progress?: (m: string) => void;
  },
): Promise<FetchReport> {
  const sizeOf = async () => (await Deno.stat(part).catch(() => undefined))?.size ?? 0;
  const resumedFrom = await sizeOf();
  let attempts = 0;
  for (;;) {
    attempts++;
    opts.signal?.throwIfAborted();
    const have = await sizeOf();
    try {
      const done = await fetchOnce(url, part, have, opts);
      if (done) return { bytes: await sizeOf(), attempts, resumedFrom };
    } catch (e) {
      if (e instanceof Permanent || opts.signal?.aborted) throw e;
      if (attempts > opts.retries) {
        throw new Error(`download ${url}: failed after ${attempts} attempts: ${(e as Error).message}`);
      }
      const delay = Math.min(60, opts.backoffS * 2 ** (attempts - 1));
      opts.log?.(`attempt ${attempts} failed (${(e as Error).message}); retrying in ${delay.toFixed(1)} s`);
      await sleep(delay * 1000, opts.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((res, rej) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      rej(signal.reason);
    }, { once: true });
  });
}

/** One request; true when the file is complete. Throws on a retryable failure. */
async function fetchOnce(
  url: string,
  part: string,
  have: number,
  opts: { timeoutS: number; signal?: AbortSignal; progress?: (m: string) => void; log?: (m: string) => void },
): Promise<boolean> {
  const idle = new AbortController();
  const signals = [idle.signal, ...(opts.signal ? [opts.signal] : [])];
  let timer = setTimeout(() => idle.abort(new Error(`no data for ${opts.timeoutS} s`)), opts.timeoutS * 1000);
  const poke = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new Error(`no data for ${opts.timeoutS} s`)), opts.timeoutS * 1000);
  };
  try {
    const res = await fetch(url, {
      headers: have > 0 ? { Range: `bytes=${have}-` } : {},
      signal: AbortSignal.any(signals),
      redirect: "follow",
    });
    if (res.status === 416 && have > 0) {
      // Nothing left to send: complete if the total matches what we have.
      await res.body?.cancel();
      const total = /\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1];
      if (total !== undefined && Number(total) === have) return true;
      opts.log?.(`server refused the range from ${have}; restarting`);
      await Deno.remove(part).catch(() => {});
      throw new Error("range not satisfiable");
    }
    if (!res.ok) {
      await res.body?.cancel();
      const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      const msg = `HTTP ${res.status} ${res.statusText}`;
      if (retryable) throw new Error(msg);
      throw new Permanent(`download ${url}: ${msg}`);
    }
    let offset = 0;
    if (res.status === 206) {
      const start = /bytes (\d+)-/.exec(res.headers.get("content-range") ?? "")?.[1];
      if (Number(start) !== have) {
        await res.body?.cancel();
        await Deno.remove(part).catch(() => {});
        throw new Error(`server resumed at ${start}, not ${have}; restarting`);
      }
      offset = have;
      if (have > 0) opts.log?.(`resuming at ${fmtBytes(have)}`);
    } else if (have > 0) {
      opts.log?.("server ignored the Range request; restarting from the beginning");
    }
    const length = Number(res.headers.get("content-length") ?? NaN);
    const total = Number.isFinite(length) ? offset + length : undefined;
    if (Number.isFinite(length) && length > 0) {
      // Room for the rest (the archive is extracted after this, which the engine's reserve covers only in part).
      try {
        await ensureFreeSpace(dirname(part), length, `download ${url}`);
      } catch (e) {
        await res.body?.cancel();
        throw new Permanent((e as Error).message);
      }
    }
    const file = await Deno.open(part, { write: true, create: true, truncate: offset === 0, append: offset > 0 });
    let got = offset;
    let last = 0;
    try {
      if (!res.body) throw new Error("empty response body");
      for await (const chunk of res.body) {
        poke();
        let written = 0;
        while (written < chunk.length) written += await file.write(chunk.subarray(written));
        got += chunk.length;
        const now = performance.now();
        if (now - last > 200) {
          last = now;
          opts.progress?.(
            total ? `${fmtBytes(got)} / ${fmtBytes(total)} (${((100 * got) / total).toFixed(1)}%)` : fmtBytes(got),
          );
        }
      }
    } finally {
      file.close();
    }
    if (total !== undefined && got < total) throw new Error(`connection closed at ${got} of ${total} bytes`);
    return true;
  } finally {
    clearTimeout(timer);
  }
}

export async function sha256File(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const h = createHash("sha256");
  const f = await Deno.open(path);
  for await (const chunk of f.readable) h.update(chunk);
  return h.digest("hex");
}

const kind = registerStageKind<DownloadParams>({
  kind: "download",
  version: 1,
  description: "Downloads a file over HTTP(S), verifies its sha256 and extracts zip / tar(.gz) archives safely.",
  params: downloadParams,
  inputs: {},
  outputs: { data: { description: "the extracted tree, or the downloaded file", type: "dir" } },
  module: import.meta.url,
  async run(ctx: StageContext<DownloadParams>) {
    const p = ctx.params;
    if (!p.sha256 && !p.insecure_skip_verify) {
      throw new Error(
        `download ${p.url}: no sha256 given. Add the expected sha256 of the file, or set ` +
          "`insecure_skip_verify: true` to accept it unverified.",
      );
    }
    const { join } = await import("node:path");
    const filename = p.filename ?? fileNameOf(p.url);
    const part = join(ctx.scratch, `${filename}.part`);
    await Deno.mkdir(ctx.scratch, { recursive: true });
    const report = await fetchResumable(p.url, part, {
      retries: p.retries,
      backoffS: p.backoff_s,
      timeoutS: p.timeout_s,
      signal: ctx.signal,
      log: (m) => ctx.log(m),
      progress: (m) => ctx.progress(`download ${filename}: ${m}`),
    });
    const digest = await sha256File(part);
    const notes: string[] = [];
    if (p.sha256) {
      if (digest !== p.sha256.toLowerCase()) {
        await Deno.remove(part).catch(() => {});
        throw new Error(
          `download ${p.url}: sha256 mismatch: expected ${p.sha256.toLowerCase()}, got ${digest} ` +
            `(${report.bytes} bytes); the file was removed`,
        );
      }
    } else {
      notes.push(`download: ${filename} was NOT verified (insecure_skip_verify); its sha256 is ${digest}`);
    }
    ctx.log(`downloaded ${filename}: ${report.bytes} bytes, sha256 ${digest}, ${report.attempts} attempt(s)`);
    const { extractArchive, sniffArchive } = await import("../data/archive.ts");
    const format = p.extract === "auto" ? await sniffArchive(part) : p.extract === "none" ? undefined : p.extract;
    const out = ctx.output("data");
    let extracted: Record<string, number> | undefined;
    if (format) {
      ctx.progress(`extracting ${filename} (${format})`);
      const r = await extractArchive(part, out, format, { stripComponents: p.strip_components });
      extracted = { ...r };
      ctx.log(`extracted ${r.files} files, ${r.dirs} directories, ${r.links} links (${r.bytes} bytes)`);
      await Deno.remove(part).catch(() => {});
    } else {
      await Deno.mkdir(out, { recursive: true });
      await Deno.rename(part, join(out, filename));
    }
    return {
      summary: {
        url: p.url,
        filename,
        bytes: report.bytes,
        sha256: digest,
        verified: !!p.sha256,
        attempts: report.attempts,
        resumed_from: report.resumedFrom,
        format: format ?? "none",
        ...(extracted ? { extracted } : {}),
      },
      notes,
    };
  },
});

export default kind;
