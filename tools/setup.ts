/**
 * Idempotent set-up, run by `deno task reproduce`, `deno task test` and
 * `.ci/run`: installs the pinned npm packages and builds lmdb from source in
 * LMDB data format v1 (the format Python's lmdb, and so every public STR
 * data set, uses). Does nothing when both are already in place.
 */
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const root = fromFileUrl(new URL("..", import.meta.url));
const quiet = Deno.args.includes("--quiet");
const say = (m: string) => quiet || console.error(`setup: ${m}`);

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command quietly; its output is shown only when it fails. */
async function sh(cmd: string[], env: Record<string, string> = {}, cwd = root): Promise<void> {
  const p = new Deno.Command(cmd[0], { args: cmd.slice(1), cwd, env, stdout: "piped", stderr: "piped" });
  const { code, stdout, stderr } = await p.output();
  if (code !== 0) {
    const decoder = new TextDecoder();
    console.error(decoder.decode(stdout).slice(-4000), decoder.decode(stderr).slice(-8000));
    throw new Error(`setup: \`${cmd.join(" ")}\` (in ${cwd}) failed with exit code ${code}`);
  }
}

const lockHash = await sha256(join(root, "package-lock.json"));
const npmMarker = join(root, "node_modules", ".strata-npm-lock");
if (!(await exists(npmMarker)) || (await Deno.readTextFile(npmMarker)) !== lockHash) {
  say("installing npm packages (npm ci)…");
  await sh(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]);
  await Deno.writeTextFile(npmMarker, lockHash);
}

// npm's own node-gyp, or ours from devDependencies.
const lmdbDir = join(root, "node_modules", "lmdb");
const lmdbVersion = JSON.parse(await Deno.readTextFile(join(lmdbDir, "package.json"))).version;
const lmdbMarker = join(lmdbDir, "build", "strata-data-v1");
if (!(await exists(lmdbMarker)) || (await Deno.readTextFile(lmdbMarker)) !== lmdbVersion) {
  say(`building lmdb ${lmdbVersion} from source in data format v1 (about 20 s)…`);
  const nodeGyp = join(root, "node_modules", ".bin", "node-gyp");
  const nodedir = (await exists("/usr/include/node/node.h")) ? ["--nodedir=/usr"] : [];
  await sh([nodeGyp, "rebuild", ...nodedir], { LMDB_DATA_V1: "true" }, lmdbDir);
  // Prebuilt v2 binaries would be picked before our build: remove them.
  await Deno.remove(join(root, "node_modules", "@lmdb"), { recursive: true }).catch(() => {});
  await Deno.writeTextFile(lmdbMarker, lmdbVersion);
}
// The native torch backend (backend/torch/): a C++ shim over libtorch, compiled here. Optional: without a
// libtorch strata trains on wasm, and says once how to get the faster backend.
const { buildShim, currentBuild } = await import("../backend/torch/build.ts");
if (!(await currentBuild())) {
  let result = await buildShim(say);
  if (!result.ok && Deno.build.os === "linux" && (await debianRoot())) {
    say("installing Debian's libtorch-dev for the native torch backend (apt-get)…");
    const installed = await sh([
      "apt-get",
      "install",
      "-y",
      "-qq",
      "--no-install-recommends",
      "libtorch-dev",
      "libopenblas0-pthread",
      "g++",
    ], { DEBIAN_FRONTEND: "noninteractive" }).then(() => true, () => false);
    if (installed) result = await buildShim(say);
  }
  if (!result.ok) {
    console.error(
      `setup: the faster torch backend is not available (${result.reason}); strata trains on wasm. To get it: ` +
        "`apt-get install libtorch-dev` (Debian/Ubuntu), or install PyTorch, or set STRATA_LIBTORCH=DIR, then " +
        "rerun `deno task setup`.",
    );
  } else if (result.built) {
    say(`torch backend shim built against libtorch ${result.build.libtorch.version}`);
  }
}
say("ready");

/** Root on a Debian-like system with apt-get: setup may install libtorch-dev itself. */
async function debianRoot(): Promise<boolean> {
  if (Deno.uid?.() !== 0) return false;
  return (await exists("/usr/bin/apt-get")) && (await exists("/etc/debian_version"));
}
