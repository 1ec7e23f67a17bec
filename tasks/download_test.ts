import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { extractArchive } from "../data/archive.ts";
import { stageContext } from "../testing/stage_ctx.ts";
import kind from "./download.ts";

const ARCHIVES = fileURLToPath(new URL("../testdata/archives/", import.meta.url));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Server {
  url: string;
  ranges: (string | null)[];
  close(): Promise<void>;
}

/** A local HTTP server on 127.0.0.1 serving `files`, with Range support and scripted failures. */
function serve(files: Record<string, Uint8Array>): Server {
  const ranges: (string | null)[] = [];
  const hits = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    const name = path.replace(/^\/(flaky|busy|norange)\//, "/").slice(1);
    const body = files[name];
    if (!body) return new Response("not found", { status: 404 });
    if (path.startsWith("/busy/") && n <= 2) return new Response("busy", { status: 503 });
    const range = req.headers.get("range");
    ranges.push(range);
    if (path.startsWith("/flaky/") && n === 1) {
      // Half the file, then the body ends short of its announced length.
      const half = body.slice(0, Math.floor(body.length / 2));
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(half);
          c.close();
        },
      });
      return new Response(stream, { headers: { "content-length": String(body.length) } });
    }
    const m = /^bytes=(\d+)-$/.exec(range ?? "");
    if (m && !path.startsWith("/norange/")) {
      const start = Number(m[1]);
      if (start >= body.length) {
        return new Response(null, { status: 416, headers: { "content-range": `bytes */${body.length}` } });
      }
      return new Response(body.slice(start), {
        status: 206,
        headers: { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` },
      });
    }
    return new Response(body.slice(), { headers: { "content-length": String(body.length) } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    ranges,
    close: () => server.shutdown(),
  };
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "strata-download-test-" });
  try {
    await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, prefix: string) => {
    for await (const e of Deno.readDir(d)) {
      const rel = prefix + e.name;
      out.push(e.isSymlink ? `${rel} -> ${await Deno.readLink(join(d, e.name))}` : e.isDirectory ? `${rel}/` : rel);
      if (e.isDirectory) await walk(join(d, e.name), rel + "/");
    }
  };
  await walk(dir, "");
  return out.sort();
}

const tgz = await Deno.readFile(join(ARCHIVES, "good.tar.gz"));
const zip = await Deno.readFile(join(ARCHIVES, "good.zip"));
const blob = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);

Deno.test("download: verified tar.gz and zip are extracted; plain files kept", async () => {
  const server = serve({ "good.tar.gz": tgz, "good.zip": zip, "blob.bin": blob });
  try {
    await withDir(async (dir) => {
      const ctx = await stageContext(kind, join(dir, "a"), { url: `${server.url}/good.tar.gz`, sha256: sha(tgz) });
      const result = await kind.run(ctx);
      const files = await tree(ctx.output("data"));
      assert.ok(files.includes("top/a.txt"));
      assert.ok(files.includes("top/link -> a.txt"));
      assert.ok(files.includes("top/hard"));
      assert.ok(files.some((f) => f.startsWith("top/deep/xxxx")), "GNU long name");
      assert.equal(await Deno.readTextFile(join(ctx.output("data"), "top/hard")), "hello\n");
      assert.equal((await Deno.readFile(join(ctx.output("data"), "top/sub/b.bin"))).length, 2048);
      assert.equal(result!.summary!.verified, true);
      assert.deepEqual(result!.notes, []);
      assert.ok(ctx.progressLines.some((l) => l.includes("extracting")));

      const z = await stageContext(kind, join(dir, "z"), {
        url: `${server.url}/good.zip`,
        sha256: sha(zip),
        strip_components: 1,
      });
      await kind.run(z);
      assert.deepEqual(await tree(z.output("data")), ["a.txt", "empty.txt", "sub/", "sub/b.bin"]);
      assert.deepEqual(
        await Deno.readFile(join(z.output("data"), "sub/b.bin")),
        await Deno.readFile(join(dir, "a/outputs/data/top/sub/b.bin")),
      );

      const p = await stageContext(kind, join(dir, "p"), { url: `${server.url}/blob.bin`, sha256: sha(blob) });
      await kind.run(p);
      assert.deepEqual(await Deno.readFile(join(p.output("data"), "blob.bin")), blob);
    });
  } finally {
    await server.close();
  }
});

Deno.test("download: sha256 is mandatory unless insecure_skip_verify; a mismatch fails", async () => {
  const server = serve({ "blob.bin": blob });
  try {
    await withDir(async (dir) => {
      const url = `${server.url}/blob.bin`;
      const a = await stageContext(kind, join(dir, "a"), { url });
      await assert.rejects(kind.run(a), /no sha256 given.*insecure_skip_verify/s);
      const b = await stageContext(kind, join(dir, "b"), { url, insecure_skip_verify: true });
      const r = await kind.run(b);
      assert.match(r!.notes![0], /NOT verified/);
      const c = await stageContext(kind, join(dir, "c"), { url, sha256: "0".repeat(64) });
      await assert.rejects(kind.run(c), /sha256 mismatch: expected 0{64}, got [0-9a-f]{64}/);
      assert.throws(() => kind.params.parse({ url: "ftp://x/y" }, []), /url/);
    });
  } finally {
    await server.close();
  }
});

Deno.test("download: resumes with Range after a broken connection, retries 503 with backoff, fails fast on 404", async () => {
  const server = serve({ "blob.bin": blob });
  try {
    await withDir(async (dir) => {
      const ctx = await stageContext(kind, join(dir, "a"), {
        url: `${server.url}/flaky/blob.bin`,
        sha256: sha(blob),
        backoff_s: 0.01,
      });
      const r = await kind.run(ctx);
      assert.deepEqual(await Deno.readFile(join(ctx.output("data"), "blob.bin")), blob);
      assert.equal(server.ranges[0], null);
      const resumedAt = Number(/^bytes=(\d+)-$/.exec(server.ranges[1] ?? "")?.[1]);
      assert.ok(resumedAt > 0 && resumedAt <= blob.length / 2, `resumed at ${resumedAt}`);
      assert.equal(r!.summary!.attempts, 2);
      assert.ok(ctx.logs.some((l) => /retrying in/.test(l)));

      server.ranges.length = 0;
      const busy = await stageContext(kind, join(dir, "b"), {
        url: `${server.url}/busy/blob.bin`,
        sha256: sha(blob),
        backoff_s: 0.01,
      });
      assert.equal((await kind.run(busy))!.summary!.attempts, 3);

      const gone = await stageContext(kind, join(dir, "c"), { url: `${server.url}/nothing.bin`, sha256: sha(blob) });
      await assert.rejects(kind.run(gone), /HTTP 404/);

      // A partial file left in scratch by an earlier attempt is resumed (and a server ignoring Range restarts it).
      const resume = await stageContext(kind, join(dir, "d"), { url: `${server.url}/blob.bin`, sha256: sha(blob) });
      await Deno.writeFile(join(resume.scratch, "blob.bin.part"), blob.subarray(0, 1000));
      server.ranges.length = 0;
      assert.equal((await kind.run(resume))!.summary!.resumed_from, 1000);
      assert.deepEqual(server.ranges, ["bytes=1000-"]);
      const norange = await stageContext(kind, join(dir, "e"), {
        url: `${server.url}/norange/blob.bin`,
        sha256: sha(blob),
      });
      await Deno.writeFile(join(norange.scratch, "blob.bin.part"), blob.subarray(0, 1000));
      await kind.run(norange);
      assert.deepEqual(await Deno.readFile(join(norange.output("data"), "blob.bin")), blob);
    });
  } finally {
    await server.close();
  }
});

Deno.test("extraction refuses paths and symlinks escaping the target", async () => {
  await withDir(async (dir) => {
    const cases: [string, RegExp][] = [
      ["evil_dotdot.tar.gz", /\.\.\/escape\.txt.*escapes the target/],
      ["evil_absolute.tar.gz", /absolute path refused/],
      ["evil_symlink.tar.gz", /symlink to the absolute path \/etc refused/],
      ["evil_symlink_up.tar.gz", /points outside the target directory/],
      ["evil_through_symlink.tar.gz", /written through the symlink alias/],
      ["evil_dotdot.zip", /escapes the target/],
      ["evil_symlink.zip", /symlink to the absolute path \/etc refused/],
    ];
    for (const [name, re] of cases) {
      const target = join(dir, name, "out");
      await assert.rejects(extractArchive(join(ARCHIVES, name), target), re, name);
    }
    assert.ok(!(await fs.stat(join(dir, "escape.txt")).catch(() => undefined)));
    assert.ok(!(await fs.stat("/tmp/strata-evil.txt").catch(() => undefined)));
    // The plain tar extracts like the gzipped one.
    const r = await extractArchive(join(ARCHIVES, "good.tar"), join(dir, "plain"));
    assert.equal(r.files, 3);
    assert.equal(r.links, 2);
  });
});

Deno.test("extraction: truncated and corrupt archives fail with the archive named", async () => {
  await withDir(async (dir) => {
    const cut = async (name: string, keep: (n: number) => number) => {
      const bytes = await Deno.readFile(join(ARCHIVES, name));
      const path = join(dir, `cut_${name}`);
      await Deno.writeFile(path, bytes.subarray(0, keep(bytes.length)));
      return path;
    };
    const zip = await cut("good.zip", (n) => n - 30);
    await assert.rejects(
      extractArchive(zip, join(dir, "z")),
      (e: Error) => e.name === "ArchiveError" && e.message.includes(zip),
    );
    const tgz = await cut("good.tar.gz", (n) => Math.floor(n / 2));
    await assert.rejects(
      extractArchive(tgz, join(dir, "t")),
      (e: Error) => e.name === "ArchiveError" && e.message.includes(tgz),
    );
    const tar = await cut("good.tar", () => 700);
    await assert.rejects(
      extractArchive(tar, join(dir, "p")),
      (e: Error) => e.name === "ArchiveError" && e.message.includes(tar),
    );
  });
});
