import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Adam, clipByGlobalNorm } from "./adam.ts";
import { makeSchedule } from "./schedule.ts";
import { scheduleSchema } from "./schedule.ts";

await tf.setBackend("cpu");

Deno.test("Adam: PyTorch's update, 3 steps against a float64 reference", async () => {
  const w = tf.variable(tf.tensor1d([0.5, -1]));
  const adam = new Adam(new Map([["w", w]]));
  const grads = [[0.1, -2], [0.3, 0.5], [-0.2, 1]];
  const lr = 0.01;
  const ref = [0.5, -1], m = [0, 0], v = [0, 0];
  for (const [t, g] of grads.entries()) {
    const gt = tf.tensor1d(g);
    adam.apply(new Map([["w", gt]]), lr);
    gt.dispose();
    for (let i = 0; i < 2; i++) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      const bc1 = 1 - 0.9 ** (t + 1), bc2 = 1 - 0.999 ** (t + 1);
      ref[i] -= (lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + 1e-8);
    }
  }
  const got = await w.data();
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(got[i] - ref[i]) < 1e-6, `${got[i]} vs ${ref[i]}`);
  assert.equal(adam.step, 3);
  adam.dispose();
  w.dispose();
});

Deno.test("clipByGlobalNorm: scales by max/(norm+1e-6) only above the threshold", async () => {
  const g = new Map<string, tf.Tensor>([["a", tf.tensor1d([3, 0])], ["b", tf.tensor1d([4])]]);
  const c = clipByGlobalNorm(g, 1);
  assert.ok(Math.abs((await c.norm.data())[0] - 5) < 1e-6);
  const a = await c.grads.get("a")!.data();
  assert.ok(Math.abs(a[0] - 3 / (5 + 1e-6)) < 1e-6);
  const d = clipByGlobalNorm(g, 20);
  assert.deepEqual([...await d.grads.get("b")!.data()], [4]);
  tf.dispose([...g.values(), ...c.grads.values(), c.norm, ...d.grads.values(), d.norm]);
});

Deno.test("schedules: step decay, cosine, one-cycle", () => {
  const step = makeSchedule(1, scheduleSchema.parse({ type: "step", milestones: [2, 4], unit: "epoch" }, []), 100, 10);
  assert.deepEqual([0, 19, 20, 39, 40, 99].map((s) => +step(s).toPrecision(6)), [1, 1, 0.1, 0.1, 0.01, 0.01]);
  const cos = makeSchedule(1, scheduleSchema.parse({ type: "cosine", warmup_steps: 2, min_lr: 0.1 }, []), 12, 1);
  assert.equal(cos(0), 0.5);
  assert.equal(cos(1), 1);
  assert.ok(Math.abs(cos(2) - 1) < 1e-12);
  assert.ok(Math.abs(cos(7) - 0.55) < 1e-12);
  assert.ok(Math.abs(cos(12) - 0.1) < 1e-12);
  const oc = makeSchedule(1, scheduleSchema.parse({ type: "one_cycle", pct_start: 0.25 }, []), 101, 1);
  assert.ok(Math.abs(oc(0) - 1 / 25) < 1e-12);
  // Values of torch.optim.lr_scheduler.OneCycleLR(max_lr=1, total_steps=101, pct_start=0.25) (cos anneal):
  // the peak falls between steps 24 and 25 (at 24.25), so neither step reaches max_lr.
  assert.ok(Math.abs(oc(24) - 0.9997482731418472) < 1e-12);
  assert.ok(Math.abs(oc(25) - 0.9997581421134295) < 1e-12);
  assert.ok(Math.abs(oc(60) - 0.5440100472753905) < 1e-12);
  assert.ok(Math.abs(oc(100) - 1 / 25 / 1e4) < 1e-12);
  assert.equal(makeSchedule(0.3, scheduleSchema.parse({}, []), 10, 1)(5), 0.3);
});
