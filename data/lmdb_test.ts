import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BadSamples, checkLmdbBuild, createLmdb, DataError, imageKey, labelKey, openLmdb } from "./lmdb.ts";

const testdata = fileURLToPath(new URL("../testdata/", import.meta.url));
const PY_LMDB = join(testdata, "python_lmdb");
const expected: { index: number; label: string; image_sha256: string }[] = JSON.parse(
  await Deno.readTextFile(join(testdata, "python_lmdb.json")),
);
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "strata-lmdb-test-" });
}

Deno.test("reads an LMDB made by Python's lmdb", async () => {
  const r = await openLmdb(PY_LMDB);
  try {
    assert.equal(r.size, expected.length);
    assert.equal(r.inferredSize, false);
    for (const e of expected) {
      const s = r.read(e.index);
      assert.ok(s.ok, `sample ${e.index}`);
      assert.equal(s.sample.label, e.label);
      assert.equal(sha256(s.sample.image), e.image_sha256);
    }
  } finally {
    await r.close();
  }
  // Reading leaves nothing behind in the data set directory.
  assert.deepEqual((await Array.fromAsync(Deno.readDir(PY_LMDB))).map((e) => e.name), ["data.mdb"]);
});

Deno.test("writes, reads back the same bytes, deterministically, in a fresh directory", async () => {
  const dir = await tempDir();
  try {
    const src = await openLmdb(PY_LMDB);
    const samples = [];
    for (let i = 1; i <= src.size; i++) {
      const s = src.read(i);
      assert.ok(s.ok);
      samples.push(s.sample);
    }
    await src.close();
    const outs = [join(dir, "a"), join(dir, "b")];
    for (const out of outs) {
      const w = await createLmdb(out, { chunk: 2 });
      for (const s of samples) w.add(s.image, s.label);
      assert.equal(w.count, samples.length);
      // Nothing at the final path until commit.
      await assert.rejects(fs.stat(out));
      await w.commit();
    }
    assert.deepEqual((await Array.fromAsync(Deno.readDir(outs[0]))).map((e) => e.name), ["data.mdb"]);
    const [a, b] = await Promise.all(outs.map((o) => Deno.readFile(join(o, "data.mdb"))));
    assert.equal(sha256(a), sha256(b), "same samples → same bytes");
    const r = await openLmdb(outs[0]);
    assert.equal(r.size, samples.length);
    for (const s of samples) {
      const got = r.read(s.index);
      assert.ok(got.ok);
      assert.deepEqual(got.sample.image, s.image);
      assert.equal(got.sample.label, s.label);
    }
    await r.close();
    await assert.rejects(createLmdb(outs[0]), /already exists/);
    await Deno.mkdir(join(dir, "empty"));
    await (await createLmdb(join(dir, "empty"))).commit();
    await Deno.remove(join(dir, "empty"), { recursive: true });
    // No leftover temporary directories.
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), ["a", "b"]);

    // Python's lmdb reads what strata wrote (when Debian's python3-lmdb is installed).
    const py = "/usr/bin/python3";
    const script = `import lmdb,sys,hashlib,json
e=lmdb.open(sys.argv[1],readonly=True,lock=False)
with e.begin() as t:
  n=int(t.get(b'num-samples'))
  print(json.dumps([[t.get(b'label-%09d'%i).decode(),hashlib.sha256(t.get(b'image-%09d'%i)).hexdigest()] for i in range(1,n+1)]))`;
    const out = await new Deno.Command(py, { args: ["-c", script, outs[0]], stdout: "piped", stderr: "piped" })
      .output().catch(() => undefined);
    if (out?.success) {
      const got = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(got, expected.map((e) => [e.label, e.image_sha256]));
    } else {
      console.warn("python3-lmdb not available: skipped the Python read-back check");
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("abort leaves nothing behind", async () => {
  const dir = await tempDir();
  try {
    const w = await createLmdb(join(dir, "x"));
    w.add(new Uint8Array([1]), "a");
    await w.abort();
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("opens read-only data sets without writing to them", async () => {
  const dir = await tempDir();
  const ro = join(dir, "ro");
  try {
    await fs.cp(PY_LMDB, ro, { recursive: true });
    await fs.chmod(join(ro, "data.mdb"), 0o444);
    await fs.chmod(ro, 0o555);
    const r = await openLmdb(ro);
    assert.equal(r.size, expected.length);
    assert.ok(r.read(1).ok);
    await r.close();
    assert.deepEqual((await Array.fromAsync(Deno.readDir(ro))).map((e) => e.name), ["data.mdb"]);
  } finally {
    await fs.chmod(ro, 0o755).catch(() => {});
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("bad input: each problem is named with its sample index", async () => {
  const dir = await tempDir();
  try {
    const enc = new TextEncoder();
    const img = new Uint8Array([0xff, 0xd8]); // the checks here need no decoding
    const path = join(dir, "bad");
    const w = await createLmdb(path);
    w.putRaw(imageKey(1), img);
    w.putRaw(labelKey(1), enc.encode("ok"));
    // 2: no image
    w.putRaw(labelKey(2), enc.encode("noimage"));
    // 3: empty image
    w.putRaw(imageKey(3), new Uint8Array(0));
    w.putRaw(labelKey(3), enc.encode("emptyimage"));
    // 4: empty label
    w.putRaw(imageKey(4), img);
    w.putRaw(labelKey(4), new Uint8Array(0));
    // 5: not UTF-8
    w.putRaw(imageKey(5), img);
    w.putRaw(labelKey(5), new Uint8Array([0x61, 0xff, 0xfe]));
    // 6: no label
    w.putRaw(imageKey(6), img);
    await w.commit({ writeNumSamples: false });

    // Missing num-samples: an error by default…
    await assert.rejects(
      openLmdb(path),
      (e: unknown) => e instanceof DataError && /no num-samples key/.test(e.message),
    );
    // …or, with skip, the size is inferred from the label keys and the problem counted.
    const bad = new BadSamples("skip", path);
    const r = await openLmdb(path, { policy: "skip", bad });
    assert.equal(r.size, 5);
    assert.equal(r.inferredSize, true);
    assert.deepEqual(bad.counts, { missing_num_samples: 1 });
    const reasons = [1, 2, 3, 4, 5].map((i) => {
      const s = r.read(i);
      return s.ok ? "ok" : s.reason;
    });
    assert.deepEqual(reasons, ["ok", "missing_image", "empty_image", "empty_label", "invalid_utf8_label"]);
    assert.throws(() => r.read(6), RangeError);
    await r.close();

    const strict = new BadSamples("error", path);
    assert.throws(() => strict.report("empty_label", "label-000000004 is empty", 4), /sample 4: .*\(empty_label\)/);
    const lenient = new BadSamples("skip", path);
    lenient.report("empty_label", "x", 4);
    lenient.report("empty_label", "y", 7);
    assert.equal(lenient.total, 2);
    assert.match(lenient.examples[1], /sample 7/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("not an LMDB, and the v2 build, give clear messages", async () => {
  await assert.rejects(openLmdb(join(testdata, "does-not-exist")), /no such LMDB directory/);
  await assert.rejects(openLmdb(testdata), /no data\.mdb/);
  assert.throws(() => checkLmdbBuild({ major: 0, minor: 9, patch: 90 }), /deno task setup/);
  checkLmdbBuild({ major: 0, minor: 9, patch: 29 });
});
