/**
 * The restricted unpickler, the file readers' refusals (forbidden globals, truncated files, short storages,
 * wrong key sets), the `weights` stage through the engine (nothing half-written in the cache), old-layout
 * strata checkpoints and `read --family`. Most cases need no PyTorch (files are made by strata's own writer or
 * by hand); those that do skip visibly.
 */
import * as tf from "@tensorflow/tfjs";
import { zipSync } from "fflate";
import assert from "node:assert/strict";
import { join } from "node:path";
import { useWasm } from "../backend/wasm.ts";
import { readZipMembers } from "../data/archive.ts";
import { main as readMain } from "../cli/read.ts";
import { getModelFamily, type Recognizer } from "../models/recognizer.ts";
import { type NamedTensor, writeSafeTensors } from "../models/safetensors.ts";
import { runIn, write } from "../pipeline/test_helpers.ts";
import weightsKind, { checkpointFile } from "../tasks/weights.ts";
import { CHECKPOINT_FORMAT, loadRecognizer, readCheckpoint, variableTensors } from "../training/checkpoint.ts";
import { saveTestCheckpoint, TEST_DATA_CONFIG } from "../training/test_checkpoint.ts";
import { loadModelFamilies } from "../training/families.ts";
import { DEMO_DIR, HAVE_DEMO } from "../training/test_context.ts";
import { KeyMismatchError, loadOfficial } from "./mod.ts";
import { PickleError, TorchStorage, TorchTensor, unpickle } from "./pickle.ts";
import { decodeOfficialState, readOfficialState } from "./state_dict.ts";
import { decodeTorchFile } from "./torch_file.ts";
import { materialize } from "./tensor.ts";
import { torchHelper, torchTest } from "./test_torch.ts";
import { encodeTorchZip, writeTorchZip } from "./torch_writer.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const bytes = (...parts: (number[] | Uint8Array | string)[]) =>
  Uint8Array.from(parts.flatMap((p) => typeof p === "string" ? [...enc(p)] : [...p]));
const unicode = (s: string) => bytes([0x8c, enc(s).length], s);

Deno.test("pickle: plain data of protocols 2 and 4 (dicts, lists, tuples, ints, floats, bytes, memo)", () => {
  // {"a": [1, -2, 300, 2**40], "b": (True, None, 1.5), "c": b"xy", "d": <memo of "a"'s list>}
  const p = bytes(
    [0x80, 4, 0x7d, 0x94, 0x28], // PROTO 4, EMPTY_DICT, MEMOIZE, MARK
    unicode("a"),
    [0x5d, 0x94, 0x28, 0x4b, 1, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x4d, 0x2c, 0x01, 0x8a, 6, 0, 0, 0, 0, 0, 1, 0x65],
    unicode("b"),
    [0x88, 0x4e, 0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x87],
    unicode("c"),
    [0x43, 2, 0x78, 0x79],
    unicode("d"),
    [0x68, 1], // BINGET 1: the list
    [0x75, 0x2e], // SETITEMS, STOP
  );
  const { value, end } = unpickle(p, 0, { source: "t" });
  assert.equal(end, p.length);
  const m = value as Map<string, unknown>;
  assert.deepEqual(m.get("a"), [1, -2, 300, 2 ** 40]);
  assert.deepEqual((m.get("b") as { items: unknown[] }).items, [true, null, 1.5]);
  assert.deepEqual([...(m.get("c") as Uint8Array)], [0x78, 0x79]);
  assert.equal(m.get("d"), m.get("a"));
});

Deno.test("pickle: forbidden globals, class-instantiating opcodes and truncation are refused by name", () => {
  const reduce = (mod: string, fn: string) =>
    bytes([0x80, 2, 0x63], `${mod}\n${fn}\n`, unicode("echo"), [0x85, 0x52, 0x2e]);
  for (const [mod, fn] of [["os", "system"], ["builtins", "eval"], ["subprocess", "Popen"], ["numpy", "load"]]) {
    assert.throws(
      () => unpickle(reduce(mod, fn), 0, { source: "evil.pkl" }),
      (e: Error) => e instanceof PickleError && e.message.includes(`forbidden global "${mod}.${fn}"`),
    );
  }
  // STACK_GLOBAL form (protocol 4).
  const stack = bytes([0x80, 4], unicode("posix"), unicode("system"), [0x93, 0x2e]);
  assert.throws(() => unpickle(stack, 0, { source: "s" }), /forbidden global "posix.system"/);
  // INST / OBJ build arbitrary classes.
  assert.throws(() => unpickle(bytes("(ios\nsystem\n."), 0, { source: "i" }), /opcode i .* refused/);
  // A dict whose pickle stops half-way.
  assert.throws(() => unpickle(bytes([0x80, 2, 0x7d, 0x58, 10, 0, 0, 0], "abc"), 0, { source: "cut" }), /ends early/);
  assert.throws(() => unpickle(bytes([0x80, 2, 0xff]), 0, { source: "junk" }), /unknown pickle opcode 0xff/);
});

Deno.test("tensor: a view reaching past its storage is an error naming the tensor", () => {
  const s = new TorchStorage("0", "float32", 6, "cpu");
  s.bytes = new Uint8Array(24);
  assert.deepEqual(materialize(new TorchTensor(s, 2, [2, 2], [2, 1], false), "ok", "f").shape, [2, 2]);
  assert.throws(
    () => materialize(new TorchTensor(s, 3, [2, 2], [2, 1], false), "w", "f.pth"),
    /f\.pth: "w" \[2,2\] \(stride \[2,1\], offset 3\) reaches element 6 of storage 0, which holds 6/,
  );
});

// ---------------------------------------------------------------------------------------------------------
// Files made by strata's writer (no PyTorch needed)

async function microModel(seed = 5): Promise<Recognizer> {
  await loadModelFamilies();
  const family = getModelFamily("abinet_vision");
  return family.create(family.config.parse({ preset: "micro" }, []), seed, 37);
}

Deno.test("zip: a truncated file and a storage shorter than its tensor are clear errors", async () => {
  await tf.setBackend("cpu");
  const model = await microModel();
  const zip = encodeTorchZip(model.state!());
  model.dispose();
  for (const keep of [zip.length - 10, Math.floor(zip.length / 2), 100]) {
    await assert.rejects(
      () => decodeOfficialState(zip.subarray(0, keep), "cut.pth"),
      /cut\.pth: not a readable zip archive \(truncated or corrupt\?\)/,
    );
  }
  const files = Object.fromEntries(await readZipMembers(zip));
  files["archive/data/3"] = files["archive/data/3"].subarray(0, 8);
  await assert.rejects(
    () => decodeOfficialState(zipSync(files, { level: 0 }), "short.pth"),
    /short\.pth: storage 3 \(archive\/data\/3\) holds 8 bytes, \d+ float32 need \d+/,
  );
  // A zip that is not a torch file.
  await assert.rejects(
    () => decodeOfficialState(zipSync({ "a.txt": enc("hi") }), "other.zip"),
    /without <name>\/data\.pkl/,
  );
  // A forbidden global inside a torch zip's data.pkl.
  const evil = zipSync({
    "archive/data.pkl": bytes([0x80, 4], unicode("posix"), unicode("system"), [0x93], unicode("true"), [
      0x85,
      0x52,
      0x2e,
    ]),
    "archive/version": enc("3\n"),
  });
  await assert.rejects(
    () => decodeOfficialState(evil, "evil.pth"),
    /evil\.pth: archive\/data\.pkl: byte \d+: forbidden global "posix\.system"/,
  );
});

Deno.test("key maps: a wrong key set reports every missing, unexpected and mis-shaped key at once", async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    const model = await microModel();
    const state = model.state!();
    model.dispose();
    state.delete("cls.bias");
    state.delete("attention.project.weight");
    state.set("language.proj.weight", { dtype: "F32", shape: [2], data: new Float32Array(2) });
    state.set("backbone.resnet.conv1.weight", { dtype: "F32", shape: [8, 3, 3, 2], data: new Float32Array(144) });
    const path = join(dir, "wrong.pth");
    await writeTorchZip(path, state);
    await assert.rejects(() => loadOfficial(path, "abinet_vision", { config: { preset: "micro" } }), (e: Error) => {
      assert.ok(e instanceof KeyMismatchError, e.message);
      assert.deepEqual(e.missing.sort(), ["attention.project.weight", "cls.bias"]);
      assert.deepEqual(e.unexpected, ["language.proj.weight"]);
      assert.equal(e.misshaped.length, 1);
      assert.match(e.message, /backbone\.resnet\.conv1\.weight is \[8,3,3,2\], the model needs \[8,3,3,3\]/);
      assert.match(e.message, /2 missing: .*1 unexpected: .*1 mis-shaped/s);
      return true;
    });
    // A full-ABINet-like file: the vision model under `vision.` beside other sub-models. As a whole it does not
    // fit abinet_vision; with select "vision." it does (ABINet's --model_eval vision).
    const vision = await microModel(3);
    const full = new Map<string, NamedTensor>([
      ...[...vision.state!()].map(([k, v]) => [`vision.${k}`, v] as [string, NamedTensor]),
      ["language.proj.weight", { dtype: "F32", shape: [2], data: new Float32Array(2) }],
      ["alignment.w_att.weight", { dtype: "F32", shape: [2], data: new Float32Array(2) }],
    ]);
    vision.dispose();
    const fullPath = join(dir, "full.pth");
    await writeTorchZip(fullPath, new Map([...full].map(([k, v]) => [`module.${k}`, v])));
    await assert.rejects(() => loadOfficial(fullPath, "abinet_vision", { config: { preset: "micro" } }), /unexpected/);
    const sel = await loadOfficial(fullPath, "abinet_vision", { config: { preset: "micro" }, select: "vision." });
    assert.deepEqual(sel.meta.training.selected, { prefix: "vision.", kept: full.size - 2, dropped: 2 });
    sel.model.dispose();
    await assert.rejects(
      () => loadOfficial(fullPath, "abinet_vision", { select: "visoin." }),
      /no key starts with "visoin\."; top-level prefixes: vision\., language\., alignment\./,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("weights stage: imports a .pth into a model dir; a bad file fails with nothing in the cache", async () => {
  await tf.setBackend("cpu");
  const root = await Deno.makeTempDir({ prefix: "strata_weights_" });
  try {
    const model = await microModel(9);
    const state = model.state!();
    await writeTorchZip(join(root, "good.pth"), new Map([...state].map(([k, v]) => [`module.${k}`, v])));
    const wrong = new Map(state);
    wrong.delete("cls.weight");
    await writeTorchZip(join(root, "wrong.pth"), wrong);
    await Deno.writeFile(
      join(root, "evil.pth"),
      bytes([0x80, 2, 0x63], "os\nsystem\n", unicode("x"), [0x85, 0x52, 0x2e]),
    );
    const yaml = (file: string) =>
      `stages:\n  w:\n    kind: weights\n    params: { family: abinet_vision, architecture: { preset: micro } }\n` +
      `    inputs: { file: "path:${file}" }\n`;
    write(root, "good.yaml", yaml("good.pth"));
    const ok = await runIn(root, "good.yaml", [weightsKind]);
    assert.equal(ok.outcomes[0].state, "ran", ok.lines.join("\n"));
    const cache = join(root, ".strata", "cache");
    const committed = async () => {
      const found: string[] = [];
      for await (const a of Deno.readDir(cache)) {
        if (!a.isDirectory || a.name.length !== 2) continue;
        for await (const b of Deno.readDir(join(cache, a.name))) found.push(join(cache, a.name, b.name));
      }
      return found;
    };
    const [entry] = await committed();
    const ck = await readCheckpoint(join(entry, "outputs", "model", "best.safetensors"));
    assert.equal(ck.meta.model_family, "abinet_vision");
    assert.equal(ck.file.metadata.layout, "pytorch");
    assert.equal(ck.meta.training.stripped_prefix, "module.");
    const loaded = await loadRecognizer(join(entry, "outputs", "model", "best.safetensors"));
    for (const [k, v] of loaded.model.state!()) assert.deepEqual(v.data, state.get(k)!.data, k);
    loaded.model.dispose();
    model.dispose();
    for (
      const [file, why] of [["evil.pth", /forbidden global "os\.system"/], [
        "wrong.pth",
        /1 missing: cls\.weight/,
      ]] as const
    ) {
      write(root, "bad.yaml", yaml(file));
      const bad = await runIn(root, "bad.yaml", [weightsKind]);
      assert.equal(bad.outcomes[0].state, "failed", bad.lines.join("\n"));
      assert.match([...bad.lines, ...bad.outcomes[0].reasons].join("\n"), why);
      assert.deepEqual(await committed(), [entry], "a failed import commits nothing");
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("strata checkpoints: the old tfjs-layout files still load", async () => {
  await useWasm();
  const dir = await Deno.makeTempDir();
  try {
    const model = await microModel(4);
    // Written as before this change: the variables as held (HWIO convs, [in, out] linears), no `layout`.
    const tensors: [string, NamedTensor][] = [];
    for (const [name, v] of [...model.weights, ...model.buffers]) {
      tensors.push([name, { dtype: "F32", shape: [...v.shape], data: v.dataSync() as Float32Array }]);
    }
    const path = join(dir, "old.safetensors");
    await writeSafeTensors(path, tensors, {
      format: CHECKPOINT_FORMAT,
      kind: "weights",
      model_family: "abinet_vision",
      model_config: JSON.stringify(model.config),
      num_classes: "37",
      data: JSON.stringify(TEST_DATA_CONFIG),
      training: "{}",
    });
    const images = tf.randomUniform([1, 32, 128, 3], -1, 1, "float32", 2) as tf.Tensor4D;
    const want = model.predict(images).logits;
    const { model: old } = await loadRecognizer(path);
    const got = old.predict(images).logits;
    assert.deepEqual(got.dataSync(), want.dataSync());
    tf.dispose([images, want, got]);
    old.dispose();
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: `read --family: published .pth weights read like the imported strata checkpoint${
    HAVE_DEMO ? "" : " (SKIPPED: ../shared/data is absent)"
  }`,
  ignore: !HAVE_DEMO,
}, async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    const model = await microModel(6);
    const pth = join(dir, "micro.pth");
    await writeTorchZip(pth, model.state!());
    model.dispose();
    const run = async (...args: string[]) => {
      const lines: string[] = [];
      assert.equal(await readMain([...args, "--backend", "cpu", DEMO_DIR], (l) => lines.push(l)), 0);
      return lines;
    };
    // micro's head count is not visible in a state dict, so this (non-official) config is given via a strata
    // checkpoint; the official full config needs nothing (see parity_test.ts). Here: defaults (nhead 8) differ
    // from micro (nhead 2), so compare --family against an import with the same defaults.
    const { importOfficial } = await import("./mod.ts");
    const ckpt = join(dir, "micro.safetensors");
    await importOfficial(pth, "abinet_vision", ckpt);
    const direct = await run("--checkpoint", pth, "--family", "abinet_vision");
    assert.deepEqual(direct, await run("--checkpoint", ckpt));
    assert.equal(direct.length, 6);
    // Without --family, a .pth is refused with a hint.
    assert.equal(await readMain(["--checkpoint", pth, DEMO_DIR], () => {}), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(torchTest("torch.save: dtypes, scalars, empty and transposed tensors; truncated legacy files"), async () => {
  const dir = await Deno.makeTempDir();
  try {
    await tf.setBackend("cpu");
    const model = await microModel(2);
    const src = join(dir, "micro.safetensors");
    await writeSafeTensors(src, model.state!());
    model.dispose();
    await torchHelper("make", src, dir, "misc_dtypes_zip.pth", "abinet_style_legacy.pth");
    const misc = await readOfficialState(join(dir, "misc_dtypes_zip.pth"));
    const get = (k: string) => misc.tensors.get(k)!;
    assert.deepEqual([...get("f64").tensor.data], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(get("i64").tensor, { dtype: "I32", shape: [3], data: Int32Array.of(-3, 0, 2 ** 31 - 1) });
    assert.deepEqual(get("b").tensor, { dtype: "U8", shape: [3], data: Uint8Array.of(1, 0, 1) });
    assert.deepEqual(get("h_t").tensor.shape, [3, 2]);
    assert.deepEqual([...get("h_t").tensor.data], [0, 3, 1, 4, 2, 5]);
    assert.deepEqual([...get("bf").tensor.data], [1.5, -2.25]);
    assert.deepEqual(get("scalar").tensor, { dtype: "F32", shape: [], data: Float32Array.of(7) });
    assert.deepEqual(get("empty").tensor.shape, [0, 4]);
    // Legacy: the whole ABINet-style file, numpy scalars in fastai's optimizer state included.
    const legacy = await Deno.readFile(join(dir, "abinet_style_legacy.pth"));
    const whole = (await decodeTorchFile(legacy, "legacy.pth")).value as Map<string, Map<string, unknown>>;
    const group = (whole.get("opt")!.get("param_groups") as Map<string, unknown>[])[0];
    assert.equal(group.get("lr"), 1e-4);
    assert.equal(group.get("wd"), 0.5);
    // Cut inside the storages, and inside the pickle.
    await assert.rejects(
      () => decodeOfficialState(legacy.subarray(0, legacy.length - 100), "cut.pth"),
      // Where the cut lands depends on the storage keys torch.save picks (object ids), so either message names it.
      /cut\.pth: storage \d+: (needs \d+ bytes at offset \d+, the file has \d+|the file ends before its size) \(truncated\?\)/,
    );
    await assert.rejects(
      () => decodeOfficialState(legacy.subarray(0, 400), "cut2.pth"),
      /cut2\.pth.*(ends early|truncated)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("weights stage: a folder input (a download's data) gives its only file, or `member`", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a.pth"), "x");
    assert.equal(await checkpointFile(dir, undefined, "w"), join(dir, "a.pth"));
    assert.equal(await checkpointFile(join(dir, "a.pth"), undefined, "w"), join(dir, "a.pth"));
    await Deno.writeTextFile(join(dir, "b.ckpt"), "y");
    await assert.rejects(
      () => checkpointFile(dir, undefined, "w"),
      /w: .* holds 2 files \(a\.pth, b\.ckpt\); set params\.member/,
    );
    assert.equal(await checkpointFile(dir, "b.ckpt", "w"), join(dir, "b.ckpt"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("strata checkpoints: variableTensors gives a PyTorch-layout file's tensors in the variables' layout", async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    const model = await microModel(8);
    const path = join(dir, "m.safetensors");
    await saveTestCheckpoint(path, model);
    const ck = await readCheckpoint(path);
    assert.equal(ck.file.metadata.layout, "pytorch");
    assert.deepEqual(ck.file.tensors.get("backbone.resnet.conv1.weight")!.shape, [8, 3, 3, 3]); // OIHW
    const vars = await variableTensors(ck, path);
    for (const [name, v] of [...model.weights, ...model.buffers]) {
      const t = vars.get(name)!;
      assert.deepEqual(t.shape, v.shape, name); // HWIO for convs
      assert.deepEqual(t.data, v.dataSync(), name);
    }
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("strata checkpoints: abinet's init_vision takes a PyTorch-layout abinet_vision checkpoint", async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    const vision = await microModel(12);
    const path = join(dir, "v.safetensors");
    await saveTestCheckpoint(path, vision);
    const family = getModelFamily("abinet");
    const full = family.create(
      family.config.parse({ vision: { preset: "micro" }, language: { preset: "micro" } }, []),
      1,
      37,
    );
    const ck = await readCheckpoint(path);
    const n = full.initFrom!("vision", "abinet_vision", await variableTensors(ck, path), path);
    assert.ok(n > 0);
    const got = full.state!();
    for (const [name, t] of vision.state!()) assert.deepEqual(got.get(`vision.${name}`)!.data, t.data, name);
    full.dispose();
    vision.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
