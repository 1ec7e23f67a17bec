import assert from "node:assert/strict";
import { fixtureExists, fnv1a32, fxgen, fxgenHash, fxgenSeed, loadFixture, skipUnlessFixture } from "./fixtures.ts";

Deno.test("fxgen-v1: the README's test vector", () => {
  assert.equal(fnv1a32("proj.weight"), 0x5fed7ac8);
  const s = fxgenSeed("proj.weight");
  assert.equal(s, 0xd7369eb3);
  assert.equal(fxgenHash(s, 0), 0x54aaa70d);
  assert.equal(fxgenHash(s, 1), 0xde16905f);
  const v = fxgen("proj.weight", 4, 0, 0.25);
  // The README prints 8 decimals.
  const want = [-0.08463553, 0.18376589, -0.15264803, -0.16656059];
  v.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 5e-9, `value ${i}: ${x} vs ${want[i]}`));
});

const GENERATED = ["abinet_resnet/resnet45.json", "abinet_vision/base_vision.json"];
for (const file of GENERATED) {
  Deno.test(
    { name: `fxgen-v1: every tensor of ${file} meets its manifest check`, ignore: skipUnlessFixture(file) },
    async () => {
      const fx = await loadFixture(file);
      const params = await fx.params(); // throws on any check mismatch
      const expected = fx.json.params!.manifest.filter((m) => m.torch_dtype === "float32").length;
      assert.equal(params.size, expected);
    },
  );
}

// Stored parameters are the fxgen values too: regenerating them reproduces the files bit for bit.
const STORED = "abinet_resnet/basicblock_stride2_downsample.json";
Deno.test({ name: "fxgen-v1: reproduces stored parameters bit for bit", ignore: !fixtureExists(STORED) }, async () => {
  const fx = await loadFixture(STORED);
  const stored = await fx.params();
  for (const m of fx.json.params!.manifest) {
    if (!m.fxgen) continue;
    const n = m.shape.reduce((a, b) => a * b, 1);
    assert.deepEqual(
      fxgen(m.name, n, m.fxgen.offset, m.fxgen.scale, m.fxgen.base_seed),
      stored.get(m.name)!.data,
      m.name,
    );
  }
});
