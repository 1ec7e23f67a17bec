/**
 * Every shipped experiment file must load and plan against the real stage
 * kinds (what `deno task run X --dry-run` does), so a renamed param or a
 * typo in a YAML file fails the tests, not a user's run.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";
import "../tasks/mod.ts";
import { planExperiment } from "../pipeline/mod.ts";
import { resolveConfig } from "../models/abinet/config.ts";
import { resolveConfig as resolveParseqConfig } from "../models/parseq/config.ts";

const dir = fileURLToPath(new URL(".", import.meta.url));

function yamlFiles(folder: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(folder)) {
    const path = join(folder, e.name);
    if (e.isDirectory) out.push(...yamlFiles(path));
    else if (e.name.endsWith(".yaml")) out.push(path);
  }
  return out.sort();
}

for (const file of yamlFiles(dir)) {
  Deno.test(`experiment ${relative(dir, file)} plans; its models' input and label sizes match the data`, async () => {
    const plan = await planExperiment(file);
    assert.ok(plan.instances.length > 0, "no stage instances");
    // The train stage checks this only when it starts; a mismatch (e.g. a preset's 32×128 RGB against 32×64
    // greyscale data) should fail here, not an hour into a run.
    for (const t of plan.byStage.get("train") ?? []) {
      const p = t.params as { architecture: Record<string, unknown>; data: Record<string, Record<string, number>> };
      // Each family resolves its own presets (parseq's `small` is not ABINet's).
      const model = (t.params as { model?: string }).model;
      const a = model === "parseq"
        ? resolveParseqConfig(p.architecture as never)
        : resolveConfig(p.architecture as never);
      const want = [p.data.image.height, p.data.image.width, p.data.image.channels, p.data.labels.max_length];
      assert.deepEqual([a.image_height, a.image_width, a.image_channels, a.max_length], want, t.id);
    }
  });
}

Deno.test("default experiment: both models × the same seeds, trained and evaluated alike", async () => {
  const plan = await planExperiment(join(dir, "conclr_vs_abinet.yaml"));
  const trains = plan.byStage.get("train") ?? [];
  assert.deepEqual(
    trains.map((t) => t.id).sort(),
    ["abinet_vision", "conclr_vision"].flatMap((m) => [1].map((s) => `train[model=${m},seed=${s}]`)),
  );
  // Identical settings apart from the model: only `model` may differ between runs of the same seed.
  const withoutModel = (p: Record<string, unknown>) => JSON.stringify({ ...p, model: undefined });
  for (const seed of [1]) {
    const [a, c] = ["abinet_vision", "conclr_vision"].map((m) => plan.byId.get(`train[model=${m},seed=${seed}]`)!);
    assert.equal(withoutModel(a.params), withoutModel(c.params));
  }
  assert.equal((plan.byStage.get("evaluate") ?? []).length, 2 * 3); // per (model, seed, data set)
  // Never a test split in training: the real training crops come from the *_train folders only, and the
  // validation crops (the first 300 of IIIT5K's training split) are not among them.
  const train = plan.byId.get("train[model=abinet_vision,seed=1]")!;
  const sources = (id: string) => plan.byId.get(id)!.inputs.source.map((r) => r.type === "path" ? r.path : r.instance);
  for (const r of train.inputs.train) {
    if (r.type !== "stage" || r.stage === "synth_train") continue;
    for (const src of sources(r.instance)) assert.match(src, /_train$/, `${r.instance} reads ${src}`);
  }
  assert.equal((plan.byId.get("iiit5k_train")!.params as { offset: number }).offset, 300);
  assert.equal((plan.byId.get("iiit5k_val")!.params as { limit: number }).limit, 300);
  assert.equal(plan.byId.get("report")?.publish, "results/conclr_vs_abinet");
});

Deno.test("full-setting experiment: the ConCLR README's hyper-parameters", async () => {
  const plan = await planExperiment(join(dir, "conclr_vs_abinet_full.yaml"));
  const train = plan.byId.get("train[model=conclr_vision,seed=1]")!;
  const p = train.params as Record<string, unknown>;
  assert.equal(p.batch_size, 384);
  assert.equal(p.epochs, 4);
  assert.equal(p.lr, 0.0001);
  assert.deepEqual((p.schedule as Record<string, unknown>).milestones, [3]);
  assert.deepEqual(p.architecture, { preset: "full" });
});

Deno.test("published weights: released files through weights stages, README numbers beside the measured", async () => {
  const plan = await planExperiment(join(dir, "published_weights.yaml"));
  for (const id of ["abinet_vision", "abinet_full_vision"]) {
    const w = plan.byId.get(id)!;
    assert.equal(w.kind.kind, "weights");
    assert.equal((w.params as Record<string, unknown>).family, "abinet_vision");
  }
  assert.equal((plan.byId.get("abinet_full_vision")!.params as Record<string, unknown>).select, "vision.");
  assert.deepEqual((plan.byStage.get("evaluate") ?? []).map((e) => e.id).sort(), [
    "evaluate[model=abinet_full_vision]",
    "evaluate[model=abinet_vision]",
  ]);
  const expected = (plan.byId.get("report")!.params as { expected: Record<string, Record<string, number>> }).expected;
  assert.deepEqual(expected.abinet_full_vision, {
    ic13_857: 97.0,
    svt: 93.4,
    iiit5k_3000: 96.4,
    ic15_1811: 85.9,
    svtp: 89.5,
    cute80: 89.2,
    combined: 92.7,
  });
});

Deno.test("default experiment: adding a data set adds evaluate instances and leaves the others' inputs alone", async () => {
  const tmp = await Deno.makeTempDir({ dir, prefix: ".tmp_extend_" });
  try {
    const file = join(tmp, "more.yaml");
    await Deno.writeTextFile(
      file,
      [
        "extends: ../conclr_vs_abinet.yaml",
        "stages:",
        "  ic13:",
        "    kind: import",
        "    params: { layout: real, name: IC13_857 }",
        '    inputs: { source: "path:../../../shared/data/real/svt_test?" }',
        "  evaluate:",
        "    matrix: { dataset: [synth_test, iiit5k, svt, ic13] }",
      ].join("\n"),
    );
    const [base, more] = await Promise.all([planExperiment(join(dir, "conclr_vs_abinet.yaml")), planExperiment(file)]);
    const ev = (p: typeof base) => new Map((p.byStage.get("evaluate") ?? []).map((i) => [i.id, i]));
    const a = ev(base), b = ev(more);
    const added = [...b.keys()].filter((id) => !a.has(id));
    assert.ok(added.length > 0 && added.every((id) => id.includes("dataset=ic13")), added.join(", "));
    for (const [id, inst] of a) {
      assert.ok(b.has(id), `${id} vanished`);
      assert.equal(JSON.stringify(b.get(id)!.params), JSON.stringify(inst.params));
      assert.equal(JSON.stringify(b.get(id)!.inputs), JSON.stringify(inst.inputs), id);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("variants: quick is labelled as not reading; gpu is tiny with ≥ 300,000 samples per run; seeds3", async () => {
  const quick = await planExperiment(join(dir, "conclr_vs_abinet_quick.yaml"));
  const qt = quick.byId.get("train[model=conclr_vision,seed=1]")!.params as Record<string, number>;
  assert.ok(qt.steps * qt.batch_size <= 2000);
  assert.match(String((quick.byId.get("report")!.params as Record<string, unknown>).title), /do not read/);
  assert.equal(quick.byId.get("report")!.publish, "results/conclr_vs_abinet_quick");

  const gpu = await planExperiment(join(dir, "conclr_vs_abinet_gpu.yaml"));
  const gt = gpu.byId.get("train[model=abinet_vision,seed=2]")!.params as Record<string, unknown>;
  assert.equal((gt.architecture as { preset: string }).preset, "tiny");
  assert.ok((gt.steps as number) * (gt.batch_size as number) >= 300_000);
  const synth = gpu.byId.get("synth_train")!.params as { render: Record<string, number> };
  assert.equal(synth.render.rotation, 5); // the renderer's defaults, not the default experiment's clean renders

  const s3 = await planExperiment(join(dir, "conclr_vs_abinet_seeds3.yaml"));
  assert.equal((s3.byStage.get("train") ?? []).length, 6);
  assert.equal((s3.byStage.get("evaluate") ?? []).length, 18);
});

Deno.test("abinet_full: the official pretrain / joint-training settings and the six benchmarks", async () => {
  const plan = await planExperiment(join(dir, "abinet_full.yaml"));
  const joint = plan.byId.get("train_abinet")!;
  const p = joint.params as Record<string, unknown>;
  assert.equal(p.model, "abinet");
  assert.equal(p.batch_size, 384);
  assert.equal(p.epochs, 10);
  assert.deepEqual((p.schedule as Record<string, unknown>).milestones, [6]);
  assert.equal((p.architecture as Record<string, unknown>).iter_size, 3);
  assert.deepEqual(joint.inputs.init_vision.map((r) => r.type === "stage" && r.instance), ["pretrain_vision"]);
  assert.deepEqual(joint.inputs.init_language.map((r) => r.type === "stage" && r.instance), ["pretrain_lm"]);
  assert.deepEqual(joint.inputs.train.map((r) => r.type === "stage" && r.instance), [
    "mj_train",
    "mj_valid",
    "mj_test",
    "st",
  ]);
  const lm = plan.byId.get("pretrain_lm")!.params as Record<string, unknown>;
  assert.equal(lm.batch_size, 4096);
  assert.equal(lm.epochs, 80);
  const vision = plan.byId.get("pretrain_vision")!.params as Record<string, unknown>;
  assert.equal(vision.epochs, 8);
  for (const e of ["evaluate_vision", "evaluate_abinet"]) {
    assert.deepEqual(
      plan.byId.get(e)!.inputs.datasets.map((r) => r.type === "stage" && r.instance),
      ["ic13_857", "svt", "iiit5k_3000", "ic15_1811", "svtp", "cute80"],
    );
  }
  // The archives' downloads carry no sha256 until a user fills it in (the stage then refuses to run).
  assert.equal((plan.byId.get("dtrb_lmdb")!.params as Record<string, unknown>).sha256, undefined);
});

Deno.test("abinet_ablation: reuses the default's ABINet-Vision stages and starts ABINet from them", async () => {
  const [ablation, base] = await Promise.all(
    ["abinet_ablation.yaml", "conclr_vs_abinet.yaml"].map((f) => planExperiment(join(dir, f))),
  );
  const seeds = (base.byStage.get("train") ?? []).filter((t) => t.matrix.model === "abinet_vision");
  assert.ok(seeds.length >= 1);
  for (const seed of seeds.map((t) => t.matrix.seed)) {
    const id = `train[model=abinet_vision,seed=${seed}]`;
    // Same params and inputs as the default's instance, hence the same cache key.
    assert.deepEqual(ablation.byId.get(id)!.params, base.byId.get(id)!.params);
    assert.deepEqual(ablation.byId.get(id)!.inputs, base.byId.get(id)!.inputs);
    const joint = ablation.byId.get(`train_abinet[seed=${seed}]`)!;
    assert.deepEqual(joint.inputs.init_vision.map((r) => r.type === "stage" && r.instance), [id]);
    assert.deepEqual(joint.inputs.init_language.map((r) => r.type === "stage" && r.instance), ["pretrain_lm"]);
  }
  assert.ok(!ablation.byId.has("train[model=conclr_vision,seed=1]"));
  const report = ablation.byId.get("report")!;
  assert.equal(report.publish, "results/abinet_ablation");
  const headline = (report.params as { headline: { metrics: string[] } }).headline;
  assert.deepEqual(headline.metrics, ["cwr", "cwr@vision", "cwr@alignment_1", "cwr@alignment_2", "cwr@alignment_3"]);
});

Deno.test("parseq_vs_abinet: the default's data, budget and seeds; only the model differs; cost measured", async () => {
  const plan = await planExperiment(join(dir, "parseq_vs_abinet.yaml"));
  const base = await planExperiment(join(dir, "conclr_vs_abinet.yaml"));
  const trains = plan.byStage.get("train") ?? [];
  assert.deepEqual(
    trains.map((t) => t.id).sort(),
    ["abinet_vision", "parseq"].flatMap((m) => [1].map((s) => `train[model=${m},seed=${s}]`)),
  );
  const p = plan.byId.get("train[model=parseq,seed=1]")!.params as Record<string, unknown>;
  const a = plan.byId.get("train[model=abinet_vision,seed=1]")!.params as Record<string, unknown>;
  const d = base.byId.get("train[model=abinet_vision,seed=1]")!.params as Record<string, unknown>;
  assert.equal(JSON.stringify({ ...p, model: undefined }), JSON.stringify({ ...a, model: undefined }));
  for (const k of ["data", "batch_size", "steps", "lr", "schedule", "seed"]) {
    assert.deepEqual(p[k], d[k], `${k} differs from the default experiment`);
  }
  assert.deepEqual(p.architecture, {
    preset: "micro",
    image_height: 32,
    image_width: 64,
    image_channels: 1,
    max_length: 12,
  });
  const evaluate = plan.byId.get("evaluate[model=parseq,seed=1,dataset=svt]")!.params as Record<string, unknown>;
  assert.equal(evaluate.cost, true);
  assert.equal(plan.byId.get("report")?.publish, "results/parseq_vs_abinet");
  const headline = (plan.byId.get("report")!.params as { headline: { metrics: string[] } }).headline;
  assert.deepEqual(headline.metrics.slice(-3), ["params_m", "gflops", "ms_per_image"]);
});

Deno.test("parseq_full: strhub's published PARSeq-S configuration", async () => {
  const plan = await planExperiment(join(dir, "parseq_full.yaml"));
  // deno-lint-ignore no-explicit-any
  const p = plan.byId.get("train[model=parseq,seed=1]")!.params as Record<string, any>;
  assert.equal(p.model, "parseq");
  assert.equal(p.architecture.preset, "small");
  assert.equal(p.batch_size, 384);
  assert.equal(p.epochs, 20);
  assert.ok(Math.abs(p.lr - 7e-4 * 384 / 256) < 1e-12);
  assert.equal(p.schedule.type, "one_cycle");
  assert.equal(p.schedule.pct_start, 0.075);
  assert.equal(p.clip_grad_norm, 20);
  assert.equal(p.data.labels.protocol, 94);
  assert.equal(p.data.image.normalize, "symmetric");
  const ev = (id: string) => plan.byId.get(id)!.params as Record<string, unknown>;
  assert.equal(ev("evaluate[model=parseq,seed=1]").protocol, 36);
  assert.equal(ev("evaluate_94[model=parseq,seed=1]").protocol, 94);
  assert.deepEqual(ev("evaluate_rotation[model=parseq,seed=1]").rotation, [0, 90, 180, 270]);
  assert.equal(ev("evaluate[model=parseq,seed=1]").decode_ar, true);
  assert.equal(ev("evaluate[model=parseq,seed=1]").refine_iters, 1);
});
