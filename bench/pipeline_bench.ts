/**
 * Engine benchmark: a cached no-op rerun of a generated 50-stage experiment
 * (wall time of the `strata run` process, Deno start-up included), SHA-256
 * throughput on a 1 GB file against `sha256sum` in the same run, and the
 * second digest of an unchanged file (must not re-read it).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DigestCache } from "../pipeline/digest.ts";
import { hashStats } from "../pipeline/hash.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const GB = 1 << 30;

const KIND = `
import { registerStageKind } from "${new URL("../pipeline/stage_kind.ts", import.meta.url).href}";
import { integer, object } from "${new URL("../pipeline/schema.ts", import.meta.url).href}";
registerStageKind({
  kind: "bench_step", version: 1, description: "adds one", module: import.meta.url,
  params: object({ i: integer({ default: 0 }) }),
  inputs: { prev: { description: "previous", optional: true, many: true } },
  outputs: { out: { description: "a number", type: "file" } },
  environment: () => ({ bench: "1" }),
  async run(ctx) {
    let n = ctx.params.i;
    for (const p of ctx.inputs.prev) n += Number(await Deno.readTextFile(p.path));
    await Deno.writeTextFile(ctx.output("out"), String(n));
  },
});
`;

function experiment(): string {
  // 5 chains of 9 steps, then a 5-instance matrix stage fanning into the chains' ends: 50 instances.
  const lines = ["name: bench50", "stages:"];
  for (let c = 0; c < 5; c++) {
    for (let s = 0; s < 9; s++) {
      const prev = s === 0 ? "" : `, inputs: { prev: c${c}s${s - 1}.out }`;
      lines.push(`  c${c}s${s}: { kind: bench_step, params: { i: ${c * 10 + s} }${prev} }`);
    }
  }
  lines.push(
    "  fan:",
    "    kind: bench_step",
    "    matrix: { i: [1, 2, 3, 4, 5] }",
    '    params: { i: "${matrix.i}" }',
    "    inputs: { prev: [c0s8.out, c1s8.out, c2s8.out, c3s8.out, c4s8.out] }",
  );
  return lines.join("\n") + "\n";
}

async function timed(cmd: string, args: string[], opts: Partial<Deno.CommandOptions> = {}): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", ...opts }).output();
  const ms = performance.now() - t;
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function main(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "strata_bench_" });
  const rows: [string, string, string, string][] = [];
  try {
    // 1. Cached no-op rerun of 50 stages.
    const kinds = join(dir, "kinds.ts");
    Deno.writeTextFileSync(kinds, KIND);
    Deno.writeTextFileSync(join(dir, "bench50.yaml"), experiment());
    const runArgs = [
      "run",
      "-A",
      "--config",
      join(REPO, "deno.json"),
      join(REPO, "cli", "strata.ts"),
      "run",
      "bench50.yaml",
    ];
    const opts = { cwd: dir, env: { STRATA_KINDS: kinds } };
    const first = await timed(Deno.execPath(), runArgs, opts);
    const reruns: number[] = [];
    for (let i = 0; i < 7; i++) reruns.push(await timed(Deno.execPath(), runArgs, opts));
    Deno.writeTextFileSync(join(dir, "empty.ts"), "");
    const startups: number[] = [];
    for (let i = 0; i < 5; i++) startups.push(await timed(Deno.execPath(), ["run", "-A", join(dir, "empty.ts")]));
    const noop = median(reruns);
    rows.push(["50-stage first run (compute)", `${first.toFixed(0)} ms`, "", ""]);
    rows.push([
      "50-stage cached no-op rerun (median of 7, wall)",
      `${noop.toFixed(0)} ms`,
      "≤ 300 ms",
      noop <= 300 ? "ok" : "MISSED",
    ]);
    rows.push(["  (deno start-up of an empty script)", `${median(startups).toFixed(0)} ms`, "", ""]);

    // 2. Hashing throughput on 1 GB against sha256sum.
    const big = join(dir, "big.bin");
    const chunk = new Uint8Array(16 << 20);
    for (let i = 0; i < chunk.length; i += 65536) crypto.getRandomValues(chunk.subarray(i, i + 65536));
    const f = Deno.openSync(big, { write: true, create: true, truncate: true });
    for (let written = 0; written < GB; written += chunk.length) {
      chunk[0] = written / chunk.length; // distinct chunks
      f.writeSync(chunk);
    }
    f.close();
    // An mtime older than the 2 s tick, so that the digest is trusted and cached.
    const old = new Date(Date.now() - 60_000);
    Deno.utimeSync(big, old, old);
    await timed("cat", [big], { stdout: "null" }); // warm the page cache for both
    const sumMs = await timed("sha256sum", [big]);
    const cache = new DigestCache(join(dir, "digests.json"));
    const bytesBefore = hashStats.bytesRead;
    let t = performance.now();
    const h1 = await cache.fileSha(big);
    const oursMs = performance.now() - t;
    const read1 = hashStats.bytesRead - bytesBefore;
    const ratio = sumMs / oursMs;
    rows.push(["sha256sum, 1 GiB", `${sumMs.toFixed(0)} ms`, "", `${(GB / 1e3 / sumMs).toFixed(0)} MB/s`]);
    rows.push(["strata hashFile, 1 GiB", `${oursMs.toFixed(0)} ms`, "", `${(GB / 1e3 / oursMs).toFixed(0)} MB/s`]);
    rows.push(["  throughput vs sha256sum", `${ratio.toFixed(2)}×`, "≥ 0.8×", ratio >= 0.8 ? "ok" : "MISSED"]);

    // 3. Second digest of the unchanged file: from the stat-keyed cache, also after a save/reload.
    cache.save();
    const reloaded = new DigestCache(join(dir, "digests.json"));
    t = performance.now();
    const h2 = await reloaded.fileSha(big);
    const secondMs = performance.now() - t;
    const read2 = hashStats.bytesRead - bytesBefore - read1;
    if (h2.sha256 !== h1.sha256) throw new Error("second digest differs");
    rows.push([
      "second digest of unchanged 1 GiB file",
      `${secondMs.toFixed(2)} ms`,
      "no re-read",
      read2 === 0 ? `ok (0 bytes read)` : `MISSED (${read2} bytes read)`,
    ]);
    if (read2 !== 0) throw new Error(`second digest re-read ${read2} bytes`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), 6));
  const header = ["measure", "value", "goal", "result"];
  console.log(`| ${header.map((h, i) => h.padEnd(widths[i])).join(" | ")} |`);
  console.log(`| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`);
  for (const r of rows) console.log(`| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`);
}

if (import.meta.main) await main();
