import assert from "node:assert/strict";
import { denormalizeToRgba, normalizeInto } from "./image.ts";

Deno.test("normalize symmetric: x/127.5 − 1 (PARSeq's Normalize(0.5, 0.5)), and back", () => {
  const spec = { height: 1, width: 2, channels: 3 as const, normalize: "symmetric" as const };
  const out = new Float32Array(6);
  normalizeInto(Float32Array.from([0, 255, 127.5, 51, 102, 300]), spec, out, 0);
  assert.deepEqual(Array.from(out).map((v) => Math.round(v * 1e6) / 1e6), [-1, 1, 0, -0.6, -0.2, 1]);
  assert.deepEqual(Array.from(denormalizeToRgba(out, spec, 0)), [0, 255, 128, 255, 51, 102, 255, 255]);
});
