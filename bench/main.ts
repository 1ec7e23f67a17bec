/**
 * `deno task bench`: runs every `bench/*_bench.ts` module's `main()` (or
 * only those named on the command line, e.g. `deno task bench pipeline data`).
 * Benchmarks print ratios against a reference measured in the same run, so
 * they stay meaningful on a loaded or slower machine.
 */
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const wanted = new Set(Deno.args);
const names = [...Deno.readDirSync(dir)]
  .map((e) => e.name)
  .filter((n) => n.endsWith("_bench.ts"))
  .map((n) => n.slice(0, -"_bench.ts".length))
  .filter((n) => wanted.size === 0 || wanted.has(n))
  .sort();

if (names.length === 0) {
  console.error(`no benchmark matches ${[...wanted].join(", ")}`);
  Deno.exit(2);
}
let failed = 0;
for (const name of names) {
  console.log(`\n## ${name}\n`);
  const started = performance.now();
  try {
    const mod = await import(`./${name}_bench.ts`);
    await mod.main();
  } catch (e) {
    failed++;
    console.log(`benchmark ${name} failed: ${(e as Error).stack ?? e}`);
  }
  console.log(`\n(${name}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
Deno.exit(failed === 0 ? 0 : 1);
