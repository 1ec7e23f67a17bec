/**
 * Finds a libtorch and compiles the shim (shim.cpp) against it with g++; run by `deno task setup`.
 *
 * Where libtorch comes from, first hit wins:
 *   1. `$STRATA_LIBTORCH=DIR` (a libtorch folder or a PyTorch package: `include/` and `lib/` inside),
 *   2. an installed PyTorch ≥ 1.13 (`python3 -c "import torch"`: headers in torch/include, libraries in torch/lib),
 *   3. Debian's `libtorch-dev` (headers in /usr/include, libraries in /usr/lib/<triplet>).
 * The library is cached under `.strata/torch/` by the hash of the shim source, the libtorch version and its
 * folder, and rebuilt when any of them changes. `build.json` beside it records what was built.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Libtorch {
  /** e.g. "1.13.1" or "2.11.0+cu130". */
  version: string;
  include: string[];
  lib: string;
  cuda: boolean;
  /** The value of _GLIBCXX_USE_CXX11_ABI that libtorch was built with. */
  cxx11Abi: 0 | 1;
  source: "STRATA_LIBTORCH" | "python" | "debian";
}

export interface ShimBuild {
  library: string;
  libtorch: Libtorch;
  sourceHash: string;
}

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "..", "..");

export function shimBuildDir(): string {
  return Deno.env.get("STRATA_TORCH_BUILD_DIR") ?? join(root, ".strata", "torch");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const d = new TextDecoder();
    return { ok: r.code === 0, out: d.decode(r.stdout), err: d.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

async function versionFromHeader(include: string): Promise<string | undefined> {
  for (const p of [join(include, "torch/csrc/api/include/torch/version.h"), join(include, "torch/version.h")]) {
    try {
      const text = await Deno.readTextFile(p);
      const m = text.match(/#define TORCH_VERSION\s+"([^"]+)"/) ??
        text.match(/TORCH_VERSION_MAJOR (\d+)[\s\S]*TORCH_VERSION_MINOR (\d+)[\s\S]*TORCH_VERSION_PATCH (\d+)/);
      if (m) return m.length > 2 ? `${m[1]}.${m[2]}.${m[3]}` : m[1];
    } catch {
      // try the next layout
    }
  }
  return undefined;
}

async function fromDir(dir: string, source: Libtorch["source"]): Promise<Libtorch | undefined> {
  const include = join(dir, "include");
  const lib = join(dir, "lib");
  if (!(await exists(join(include, "ATen", "ATen.h")))) return undefined;
  const version = await versionFromHeader(include);
  if (!version) return undefined;
  return {
    version,
    include: [include, join(include, "torch/csrc/api/include")],
    lib,
    cuda: await exists(join(lib, "libc10_cuda.so")),
    // libtorch ≥ 2.7 (and Debian's) use the C++11 ABI; older pip wheels did not. Checked by a test link below.
    cxx11Abi: 1,
    source,
  };
}

async function fromPython(): Promise<Libtorch | undefined> {
  const python = Deno.env.get("STRATA_PYTHON") ?? "python3";
  const r = await run(python, [
    "-c",
    "import torch, os, json; print(json.dumps({'dir': os.path.dirname(torch.__file__), 'version': torch.__version__, " +
    "'abi': int(torch._C._GLIBCXX_USE_CXX11_ABI), 'cuda': torch.version.cuda is not None}))",
  ]);
  if (!r.ok) return undefined;
  const info = JSON.parse(r.out.trim().split("\n").pop()!) as { dir: string; version: string; abi: number };
  const found = await fromDir(info.dir, "python");
  if (!found) return undefined;
  // Debian's python3-torch shares /usr/lib with libtorch-dev: its package folder has no include/.
  return { ...found, version: info.version, cxx11Abi: info.abi ? 1 : 0 };
}

async function fromDebian(): Promise<Libtorch | undefined> {
  const header = "/usr/include/ATen/ATen.h";
  if (!(await exists(header))) return undefined;
  const version = await versionFromHeader("/usr/include");
  const triplet = (await run("gcc", ["-print-multiarch"])).out.trim() || "x86_64-linux-gnu";
  const lib = `/usr/lib/${triplet}`;
  if (!version || !(await exists(join(lib, "libtorch_cpu.so")))) return undefined;
  return {
    version,
    include: ["/usr/include", "/usr/include/torch/csrc/api/include"],
    lib,
    cuda: await exists(join(lib, "libc10_cuda.so")),
    cxx11Abi: 1,
    source: "debian",
  };
}

/** The libtorch to build against, or undefined with the places that were looked at. */
export async function findLibtorch(): Promise<{ libtorch?: Libtorch; looked: string[] }> {
  const looked: string[] = [];
  const env = Deno.env.get("STRATA_LIBTORCH");
  if (env) {
    const found = await fromDir(env, "STRATA_LIBTORCH");
    if (found) return { libtorch: found, looked };
    looked.push(`$STRATA_LIBTORCH=${env} (no include/ATen/ATen.h with a version header)`);
  }
  const py = await fromPython();
  if (py) return { libtorch: py, looked };
  looked.push("python3 -c 'import torch' (no PyTorch with headers)");
  const deb = await fromDebian();
  if (deb) return { libtorch: deb, looked };
  looked.push("Debian libtorch-dev (/usr/include/ATen/ATen.h)");
  return { looked };
}

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hash of the shim's sources and the libtorch it is built against: the build's cache key. */
export async function buildKey(libtorch: Libtorch): Promise<string> {
  const source = await Deno.readFile(join(here, "shim.cpp"));
  const header = await Deno.readFile(join(here, "shim.h"));
  // The library file's size and mtime: an upgraded libtorch in the same folder rebuilds the shim.
  const stat = await Deno.stat(join(libtorch.lib, "libtorch_cpu.so")).catch(() => undefined);
  const lib = [stat?.size ?? 0, stat?.mtime?.getTime() ?? 0];
  return (await sha256Hex(
    JSON.stringify([
      await sha256Hex(source),
      await sha256Hex(header),
      libtorch.version,
      libtorch.lib,
      libtorch.cuda,
      lib,
    ]),
  )).slice(0, 16);
}

/** The compiler command for `libtorch` (exported for tests and the GPU bench script). */
export function compileArgs(libtorch: Libtorch, output: string): string[] {
  const libs = libtorch.cuda
    ? ["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed", "-ltorch_cpu", "-lc10", "-ltorch"]
    : ["-ltorch_cpu", "-lc10"];
  return [
    "-O2",
    "-shared",
    "-fPIC",
    "-std=c++17",
    `-D_GLIBCXX_USE_CXX11_ABI=${libtorch.cxx11Abi}`,
    ...(libtorch.cuda ? ["-DSTRATA_WITH_CUDA"] : []),
    ...libtorch.include.map((i) => `-I${i}`),
    join(here, "shim.cpp"),
    "-o",
    output,
    `-L${libtorch.lib}`,
    `-Wl,-rpath,${libtorch.lib}`,
    ...libs,
  ];
}

/** The recorded build, when it matches the current sources and libtorch. */
export async function currentBuild(): Promise<ShimBuild | undefined> {
  try {
    const record = JSON.parse(await Deno.readTextFile(join(shimBuildDir(), "build.json"))) as ShimBuild;
    if (!(await exists(record.library))) return undefined;
    const key = await buildKey(record.libtorch);
    return key === record.sourceHash ? record : undefined;
  } catch {
    return undefined;
  }
}

export type BuildResult =
  | { ok: true; build: ShimBuild; built: boolean }
  | { ok: false; reason: string };

/** Builds the shim if needed (cached by source hash + libtorch). `log` receives progress lines. */
export async function buildShim(log: (line: string) => void = () => {}): Promise<BuildResult> {
  const { libtorch, looked } = await findLibtorch();
  if (!libtorch) return { ok: false, reason: `no libtorch found (looked at: ${looked.join("; ")})` };
  const key = await buildKey(libtorch);
  const dir = shimBuildDir();
  const library = join(dir, `libstrata_torch-${key}.so`);
  const record: ShimBuild = { library, libtorch, sourceHash: key };
  const recordPath = join(dir, "build.json");
  if (await exists(library)) {
    await writeAtomic(recordPath, JSON.stringify(record, null, 2) + "\n");
    return { ok: true, build: record, built: false };
  }
  const compiler = Deno.env.get("CXX") ?? "g++";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${library}.${crypto.randomUUID()}.tmp`;
  log(
    `compiling the libtorch shim against libtorch ${libtorch.version} (${libtorch.source}, ` +
      `${libtorch.cuda ? "CUDA" : "CPU"}; about 30 s)…`,
  );
  const r = await run(compiler, compileArgs(libtorch, tmp));
  if (!r.ok) {
    await Deno.remove(tmp).catch(() => {});
    const detail = (r.err || r.out).split("\n").filter((l) => /error/i.test(l)).slice(0, 6).join("\n");
    return {
      ok: false,
      reason: `${compiler} failed to compile backend/torch/shim.cpp: ${detail || r.err.slice(-2000)}`,
    };
  }
  await Deno.rename(tmp, library);
  await writeAtomic(recordPath, JSON.stringify(record, null, 2) + "\n");
  return { ok: true, build: record, built: true };
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}
