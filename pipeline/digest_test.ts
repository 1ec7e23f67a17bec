import assert from "node:assert/strict";
import { join } from "node:path";
import { codeDigest, scanImports } from "./code.ts";
import { contentDigest, DigestCache } from "./digest.ts";
import { loadExperiment, loadYaml, useParseCache } from "./experiment.ts";
import { canonicalJson, hashStats, sha256Text } from "./hash.ts";
import { tempProject, write } from "./test_helpers.ts";

await loadYaml();

const old = (path: string) => Deno.utimeSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));

Deno.test("canonical JSON sorts keys and normalises numbers", () => {
  assert.equal(canonicalJson({ b: 1, a: [2.0, -0, { d: undefined, c: "x" }] }), '{"a":[2,0,{"c":"x"}],"b":1}');
  assert.throws(() => canonicalJson({ a: NaN }), /non-finite/);
});

Deno.test("file and directory digests are cached by stat; files modified within the tick are re-hashed", async () => {
  const dir = tempProject();
  const a = write(dir, "d/a.txt", "hello");
  write(dir, "d/sub/b.txt", "world");
  const cacheFile = join(dir, "digests.json");
  let cache = new DigestCache(cacheFile);
  const fresh = await contentDigest(join(dir, "d"), cache);
  assert.equal(fresh.type, "dir");
  assert.deepEqual(fresh.files.map((f) => f[0]), ["a.txt", "sub/b.txt"]);
  assert.equal(fresh.files[0][2], sha256Text("hello"));
  // Just written: within the tick, so not trusted: hashed again.
  let before = hashStats.bytesRead;
  await contentDigest(join(dir, "d"), cache);
  assert.equal(hashStats.bytesRead - before, 10);
  // Once the mtime is old, the digest is kept, persisted, and the file is never read again.
  for (const f of ["d/a.txt", "d/sub/b.txt"]) old(join(dir, f));
  await contentDigest(join(dir, "d"), cache);
  cache.save();
  cache = new DigestCache(cacheFile);
  before = hashStats.bytesRead;
  const again = await contentDigest(join(dir, "d"), cache);
  assert.equal(hashStats.bytesRead - before, 0);
  assert.equal(again.digest, fresh.digest);
  // A change (same size, new mtime) is seen.
  Deno.writeTextFileSync(a, "HELLO");
  const changed = await contentDigest(join(dir, "d"), cache);
  assert.notEqual(changed.digest, fresh.digest);
  const file = await contentDigest(a, cache);
  assert.equal(file.digest, `sha256:${sha256Text("HELLO")}`);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("code digests follow local imports (static, dynamic, re-exports) and record npm specifiers", () => {
  assert.deepEqual(
    scanImports(
      `import { a } from "./a.ts";\nimport type {\n  B,\n} from '../b.ts';\nexport * from "./c.ts";\n` +
        `import "./side.ts";\nconst m = await import("./lazy.ts");\nimport * as y from "yaml";\nimport x from "npm:foo@1";`,
    ),
    ["../b.ts", "./a.ts", "./c.ts", "./lazy.ts", "./side.ts", "npm:foo@1", "yaml"],
  );
  const dir = tempProject();
  write(dir, "deno.json", JSON.stringify({ imports: { yaml: "npm:yaml@2.9.1" } }));
  const k = write(dir, "k.ts", 'import "./a.ts";\nconst l = () => import("./lazy/l.ts");\nimport "yaml";\n');
  write(dir, "a.ts", 'export * from "./k.ts";\n');
  write(dir, "lazy/l.ts", "export const x = 1;\n");
  const d1 = codeDigest(`file://${k}`, new DigestCache(undefined), dir);
  assert.deepEqual(Object.keys(d1.files).sort(), ["a.ts", "k.ts", "lazy/l.ts"]);
  assert.deepEqual(d1.external, ["npm:yaml@2.9.1"]);
  write(dir, "lazy/l.ts", "export const x = 2;\n");
  const d2 = codeDigest(`file://${k}`, new DigestCache(undefined), dir);
  assert.notEqual(d1.digest, d2.digest);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("parsed experiment files are cached by stat and re-parsed when changed", () => {
  const dir = tempProject();
  const f = write(dir, "e.yaml", "params: { a: 1 }\nstages: {}\n");
  old(f);
  useParseCache(join(dir, "parsed.json"));
  try {
    assert.deepEqual(loadExperiment(f).tree.params, { a: 1 });
    const stored = JSON.parse(Deno.readTextFileSync(join(dir, "parsed.json")));
    assert.deepEqual(Object.keys(stored.entries), [f]);
    const e = loadExperiment(f, ["params.a=5"]);
    assert.deepEqual(e.tree.params, { a: 5 });
    assert.deepEqual(loadExperiment(f).tree.params, { a: 1 }); // overrides never leak into the cache
    assert.equal(e.locs.find(["params", "a"])?.file, "--set params.a");
    Deno.writeTextFileSync(f, "params: { a: 22 }\nstages: {}\n");
    old(f);
    assert.deepEqual(loadExperiment(f).tree.params, { a: 22 });
  } finally {
    useParseCache(undefined);
  }
  Deno.removeSync(dir, { recursive: true });
});
