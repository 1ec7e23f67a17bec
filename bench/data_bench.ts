/**
 * Data benchmark (`deno task bench data`):
 *
 * 1. Loader throughput: LMDB read → decode → resize → (augment) → normalise →
 *    batch, against Python PIL doing decode + resize + to-array on the same
 *    LMDB in the same run (Debian's /usr/bin/python3 with python3-pil,
 *    python3-lmdb and numpy; skipped with a message when absent). Goal:
 *    strata / PIL ≥ 1.0×.
 * 2. `synth` images/s. Goal ≥ 800.
 *
 * Rates are per CPU second of the process (all its threads: "on one core"),
 * which is robust to other people's load on a shared machine; wall-clock
 * rates are printed too. The LMDB is built from the real IIIT5K training
 * crops when ../shared/data is there, else from synthetic words.
 */
import * as fs from "node:fs/promises";
import process from "node:process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ABINET_AUGMENT } from "../data/augment.ts";
import { createLmdb } from "../data/lmdb.ts";
import { openDataset } from "../data/loader.ts";
import { synthGenerator } from "../data/synth_run.ts";
import { DEFAULT_RENDER } from "../data/synth.ts";
import { DEFAULT_TEXT } from "../data/words.ts";

const REAL = fileURLToPath(new URL("../../shared/data/real/iiit5k_train/", import.meta.url));
const PYTHON = "/usr/bin/python3";

interface Rate {
  n: number;
  cpu: number;
  wall: number;
}

async function timed(fn: () => Promise<number>): Promise<Rate> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { n, cpu: (c.user + c.system) / 1e6, wall };
}

const perCpu = (r: Rate) => r.n / r.cpu;
const perWall = (r: Rate) => r.n / r.wall;
const fmt = (x: number) => x.toFixed(0).padStart(6);

async function buildLmdb(path: string, count: number): Promise<string> {
  const w = await createLmdb(path);
  let source: string;
  try {
    await fs.access(join(REAL, "IMG"));
    for (let i = 1; w.count < count; i++) {
      const img = await Deno.readFile(join(REAL, "IMG", `${i}.jpg`)).catch(() => undefined);
      if (!img) break;
      w.add(img, (await Deno.readTextFile(join(REAL, "label", `${i}.txt`))).trim());
    }
    source = `IIIT5K train crops (${w.count})`;
  } catch {
    const gen = await synthGenerator({
      count,
      seed: 9,
      vocabulary: { split: "all", test_fraction: 0.1 },
      text: DEFAULT_TEXT,
      fonts: { families: [], min_weight: 100, max_weight: 900 },
      render: { ...DEFAULT_RENDER, png_p: 0 },
      montage: 0,
    });
    for (let i = 0; i < count; i++) {
      const s = gen.sample(i);
      w.add(s.bytes, s.label);
    }
    source = `synthetic words (${count}; ../shared/data is absent)`;
  }
  await w.commit();
  return source;
}

async function strataLoader(path: string, augment: boolean, passes: number): Promise<Rate> {
  const ds = await openDataset(path, { policy: "skip" });
  try {
    // Warm-up pass (JIT, canvas caches), not timed.
    for await (const _ of ds.batches({ mode: "train", batchSize: 64, seed: 0, augment: ABINET_AUGMENT })) break;
    return await timed(async () => {
      let n = 0;
      for (let pass = 0; pass < passes; pass++) {
        for await (
          const b of ds.batches({
            mode: "train",
            batchSize: 64,
            seed: pass + 1,
            augment: augment ? ABINET_AUGMENT : undefined,
            dropLast: false,
          })
        ) n += b.shape[0];
      }
      return n;
    });
  } finally {
    await ds.close();
  }
}

const PY_SCRIPT = `
import io, json, sys, time
import lmdb, numpy as np
from PIL import Image
env = lmdb.open(sys.argv[1], readonly=True, lock=False)
passes = int(sys.argv[2])
mean = np.array([0.485, 0.456, 0.406], np.float32); std = np.array([0.229, 0.224, 0.225], np.float32)
with env.begin() as txn:
    n = int(txn.get(b"num-samples"))
    def run():
        out = np.empty((64, 32, 128, 3), np.float32); k = 0; done = 0
        for i in range(1, n + 1):
            img = Image.open(io.BytesIO(txn.get(b"image-%09d" % i))).convert("RGB").resize((128, 32), Image.BILINEAR)
            out[k] = (np.asarray(img, np.float32) / 255.0 - mean) / std
            k += 1; done += 1
            if k == 64: k = 0
        return done
    run()  # warm-up
    c0, t0 = time.process_time(), time.perf_counter()
    total = sum(run() for _ in range(passes))
    print(json.dumps({"n": total, "cpu": time.process_time() - c0, "wall": time.perf_counter() - t0}))
`;

async function pythonPil(path: string, passes: number): Promise<Rate | string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(PYTHON, {
      args: ["-c", PY_SCRIPT, path, String(passes)],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  } catch {
    return `${PYTHON} not found`;
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    return `${PYTHON} failed: ${err} (install python3-pil, python3-lmdb, python3-numpy)`;
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

async function synthRate(count: number): Promise<Rate> {
  const gen = await synthGenerator({
    count,
    seed: 1,
    vocabulary: { split: "all", test_fraction: 0.1 },
    text: DEFAULT_TEXT,
    fonts: { families: [], min_weight: 100, max_weight: 900 },
    render: DEFAULT_RENDER,
    montage: 0,
  });
  for (let i = 0; i < 100; i++) gen.sample(100_000 + i); // warm-up
  return await timed(() => {
    for (let i = 0; i < count; i++) gen.sample(i);
    return Promise.resolve(count);
  });
}

export async function main(): Promise<void> {
  const quick = Deno.env.get("STRATA_BENCH_QUICK") === "1";
  const dir = await Deno.makeTempDir({ prefix: "strata-data-bench-" });
  try {
    const path = join(dir, "bench_lmdb");
    const source = await buildLmdb(path, quick ? 300 : 2000);
    const passes = quick ? 1 : 2;
    console.log(`LMDB: ${source}; batches of 64 at 32×128×3, ${passes} pass(es).`);
    console.log(
      `Rates per CPU second of the process (all threads), and per wall second. The machine is shared: wall rates vary.\n`,
    );
    // Interleaved rounds, best of each: the machine is shared, so single runs are noisy.
    const rounds = quick ? 1 : 3;
    const best = (a: Rate | undefined, b: Rate) => (!a || perCpu(b) > perCpu(a) ? b : a);
    let plain: Rate | undefined, aug: Rate | undefined, py: Rate | string | undefined;
    for (let r = 0; r < rounds; r++) {
      plain = best(plain, await strataLoader(path, false, passes));
      aug = best(aug, await strataLoader(path, true, passes));
      const p = await pythonPil(path, passes);
      py = typeof p === "string" ? p : best(typeof py === "object" ? py : undefined, p);
      if (typeof p === "string") break;
    }
    plain = plain!;
    aug = aug!;
    console.log(`Best of ${rounds} interleaved rounds.\n`);
    console.log("| pipeline | samples/CPU-s | samples/wall-s |");
    console.log("| --- | ---: | ---: |");
    console.log(
      `| strata: read → decode → resize → normalise → batch | ${fmt(perCpu(plain))} | ${fmt(perWall(plain))} |`,
    );
    console.log(`| strata: … + ABINet augmentation | ${fmt(perCpu(aug))} | ${fmt(perWall(aug))} |`);
    if (typeof py !== "object") {
      console.log(`\nPython PIL comparison SKIPPED: ${py ?? "not run"}`);
    } else {
      console.log(`| Python PIL: decode → resize → to-array (normalised) | ${fmt(perCpu(py))} | ${fmt(perWall(py))} |`);
      const ratio = perCpu(aug) / perCpu(py);
      const ratioPlain = perCpu(plain) / perCpu(py);
      console.log(
        `\nstrata (with augmentation) / PIL: ${ratio.toFixed(2)}× (goal ≥ 1.0×: ${ratio >= 1 ? "met" : "NOT met"}); ` +
          `without augmentation: ${ratioPlain.toFixed(2)}×`,
      );
    }
    const synth = await synthRate(quick ? 300 : 1500);
    console.log(
      `\nsynth: ${fmt(perCpu(synth)).trim()} images/CPU-s, ${fmt(perWall(synth)).trim()} images/wall-s ` +
        `(goal ≥ 800: ${perCpu(synth) >= 800 ? "met" : "NOT met"})`,
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
