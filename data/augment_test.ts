import assert from "node:assert/strict";
import { ABINET_AUGMENT, type AugmentParams, augmentPixels, homography, sampleWarp } from "./augment.ts";
import { hashSeed, Rng } from "./random.ts";

const apply = (m: number[], x: number, y: number) => {
  const w = m[6] * x + m[7] * y + m[8];
  return [(m[0] * x + m[1] * y + m[2]) / w, (m[3] * x + m[4] * y + m[5]) / w];
};

Deno.test("homography maps the four points", () => {
  const src: [number, number][] = [[0, 0], [100, 0], [100, 30], [0, 30]];
  const dst: [number, number][] = [[5, 3], [90, 1], [97, 28], [2, 25]];
  const h = homography(src, dst);
  for (let k = 0; k < 4; k++) {
    const [x, y] = apply(h, ...src[k]);
    assert.ok(Math.abs(x - dst[k][0]) < 1e-6 && Math.abs(y - dst[k][1]) < 1e-6);
  }
});

Deno.test("sampled warps: the box holds the transformed image; all three types occur", () => {
  const rng = new Rng(3);
  let perspective = 0, affine = 0;
  for (let i = 0; i < 200; i++) {
    const { forward, box } = sampleWarp(rng, ABINET_AUGMENT.geometry, 120, 40);
    if (forward[6] !== 0 || forward[7] !== 0) perspective++;
    else affine++;
    for (const [x, y] of [[0, 0], [120, 0], [120, 40], [0, 40]]) {
      const [u, v] = apply(forward, x, y);
      assert.ok(u >= box.x0 - 1e-6 && u <= box.x1 + 1e-6 && v >= box.y0 - 1e-6 && v <= box.y1 + 1e-6);
    }
  }
  assert.ok(perspective > 30 && affine > 100, `${perspective} perspective, ${affine} affine`);
  // Types can be weighted off.
  const onlyRotation = { ...ABINET_AUGMENT.geometry, types: [1, 0, 0] };
  for (let i = 0; i < 20; i++) {
    const { forward } = sampleWarp(rng, onlyRotation, 50, 20);
    assert.ok(Math.abs(forward[0] * forward[4] - forward[1] * forward[3] - 1) < 1e-9, "a pure rotation");
  }
});

Deno.test("pixel augmentation: deterministic per seed, values stay in 0..255, off when p = 0", () => {
  const base = new Float32Array(32 * 128 * 3).map((_, i) => (i * 37) % 256);
  const all: AugmentParams = {
    ...ABINET_AUGMENT,
    deterioration: { ...ABINET_AUGMENT.deterioration, p: 1 },
    color_jitter: { ...ABINET_AUGMENT.color_jitter, p: 1 },
  };
  const run = (seed: number, params: AugmentParams) =>
    augmentPixels(base.slice(), 32, 128, new Rng(hashSeed(seed, 1)), params);
  const a = run(1, all), b = run(1, all), c = run(2, all);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.ok(a.every((v) => v >= 0 && v <= 255));
  const off: AugmentParams = {
    ...ABINET_AUGMENT,
    deterioration: { ...ABINET_AUGMENT.deterioration, p: 0 },
    color_jitter: { ...ABINET_AUGMENT.color_jitter, p: 0 },
  };
  assert.deepEqual(run(1, off), base);
});
