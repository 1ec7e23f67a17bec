/**
 * `deno run -A training/probe_backend.ts [BACKEND]`: selects a tfjs backend (automatically, or checks the
 * named one) with a real training step, and records the choice in .strata/backend-probe.json. Run as a child
 * process by training/backend_fingerprint.ts so that probing never switches the backend of a process that
 * may be training.
 */
import { prepareBackend } from "./backend.ts";

if (import.meta.main) {
  try {
    const b = await prepareBackend(Deno.args[0]);
    console.log(JSON.stringify({ backend: b.name, tfjs: b.tfjsVersion, details: b.details }));
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
