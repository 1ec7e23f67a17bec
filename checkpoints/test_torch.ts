/**
 * Test helpers: Debian's PyTorch (`/usr/bin/python3`, `python3-torch`) writes and reads checkpoints at test time
 * through `torch_checkpoints.py`. Tests that need it skip visibly when it is absent.
 */
import { fileURLToPath } from "node:url";

export const PYTHON = Deno.env.get("STRATA_PYTHON") ?? "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./torch_checkpoints.py", import.meta.url));

function probe(): string | undefined {
  try {
    const r = new Deno.Command(PYTHON, {
      args: ["-c", "import torch; print(torch.__version__)"],
      stdout: "piped",
      stderr: "null",
    })
      .outputSync();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** PyTorch's version, or undefined when `python3 -c "import torch"` fails. */
export const TORCH_VERSION = probe();

/** A test-name suffix and `ignore` flag: skipped visibly without PyTorch. */
export function torchTest(name: string): { name: string; ignore: boolean } {
  if (!TORCH_VERSION) console.log(`note: ${PYTHON} has no PyTorch (apt-get install python3-torch); "${name}" skipped`);
  return { name: TORCH_VERSION ? name : `${name} (SKIPPED: no PyTorch)`, ignore: !TORCH_VERSION };
}

/** Runs `torch_checkpoints.py ARGS…`; returns stdout, throws with stderr on failure. */
export async function torchHelper(...args: string[]): Promise<string> {
  const r = await new Deno.Command(PYTHON, { args: [SCRIPT, ...args], stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout);
  if (!r.success) throw new Error(`torch_checkpoints.py ${args[0]} failed:\n${new TextDecoder().decode(r.stderr)}`);
  return out;
}
