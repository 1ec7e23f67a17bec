/**
 * Runs a plan: for each instance (producers first) resolve its inputs, compute
 * its key, take the cache hit or compute it (in-process, `await kind.run(ctx)`)
 * under the per-key lock, up to `jobs` at a time with exclusive resources;
 * publish outputs; write the provenance lock. The same walk without executing
 * gives `status` and `--dry-run`.
 */
import { join, resolve } from "node:path";
import {
  Cache,
  defaultCacheDir,
  type EntryManifest,
  type InputComponent,
  type KeyComponents,
  keyOf,
  outputMtimes,
  removeQuietly,
} from "./cache.ts";
import { codeDigest } from "./code.ts";
import { type ContentDigest, contentDigest, DigestCache } from "./digest.ts";
import { ensureFreeSpace, isNoSpace, noSpaceMessage } from "./disk.ts";
import { displayPath } from "./experiment.ts";
import { digestOf } from "./hash.ts";
import type { Instance, Plan } from "./plan.ts";
import {
  explainChange,
  type LockFile,
  lockPath,
  machineEnvironment,
  readLock,
  type StageRecord,
  writeLock,
} from "./provenance.ts";
import { checkOwnership, type Owner, ownerFile, prunePublished, publishOutputs } from "./publish.ts";
import type { ResolvedInput, StageContext, StageResult } from "./stage_kind.ts";

export interface RunOptions {
  /** Project root: `publish` dirs and `results/<experiment>/strata.lock` are relative to it. */
  root: string;
  /** Cache directory (default `$STRATA_CACHE` or `<root>/.strata/cache`). */
  cacheDir?: string;
  jobs?: number;
  /** Stage names or instance ids to run (with what they need); default all. */
  only?: string[];
  /** Stage names or instance ids to recompute even when cached. */
  force?: string[];
  forceAll?: boolean;
  /** Walk without executing: report fresh/stale and why. */
  dryRun?: boolean;
  verbose?: boolean;
  /** Re-hash cache entries before using them; corrupt ones are recomputed. */
  verify?: boolean;
  /** Progress lines (default: stderr). */
  say?: (line: string) => void;
}

export type State = "ran" | "cached" | "skipped" | "failed" | "blocked" | "stale";

export interface Outcome {
  id: string;
  stage: string;
  state: State;
  key?: string;
  /** Why skipped, failed, blocked or stale. */
  reasons: string[];
  seconds?: number;
  manifest?: EntryManifest;
  entryDir?: string;
  components?: KeyComponents;
  codeFiles?: Record<string, string>;
  /** Absolute publish directory, when the stage publishes and has outputs. */
  published?: string;
}

export interface RunResult {
  experiment: string;
  outcomes: Outcome[];
  ok: boolean;
  lockPath: string;
  seconds: number;
  /** The signal that stopped the run early (SIGINT or SIGTERM), if any. */
  interrupted?: Deno.Signal;
}

const enc = new TextEncoder();

function stderrWriter(): (line: string) => void {
  return (line) => Deno.stderr.writeSync(enc.encode(line + "\n"));
}

/** Exclusive resources and a job limit, shared by the stages of one run. */
class Slots {
  private running = 0;
  private held = new Set<string>();
  private waiters: { resources: readonly string[]; wake: () => void }[] = [];
  constructor(private readonly jobs: number) {}

  private fits(resources: readonly string[]): boolean {
    return this.running < this.jobs && resources.every((r) => !this.held.has(r));
  }

  acquire(resources: readonly string[]): Promise<void> {
    if (this.waiters.length === 0 && this.fits(resources)) {
      this.take(resources);
      return Promise.resolve();
    }
    return new Promise((wake) => this.waiters.push({ resources, wake }));
  }

  private take(resources: readonly string[]): void {
    this.running++;
    for (const r of resources) this.held.add(r);
  }

  release(resources: readonly string[]): void {
    this.running--;
    for (const r of resources) this.held.delete(r);
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i];
      if (this.fits(w.resources)) {
        this.waiters.splice(i, 1);
        this.take(w.resources);
        w.wake();
      } else i++;
    }
  }
}

function matches(inst: Instance, names: readonly string[]): boolean {
  return names.includes(inst.stage) || names.includes(inst.id);
}

export function formatSeconds(s: number): string {
  return s < 10 ? `${s.toFixed(2)}s` : s < 600 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

/** Runs (or, with dryRun, only inspects) a plan. */
export async function runPlan(plan: Plan, opts: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const exp = plan.experiment;
  const root = resolve(opts.root);
  const cache = new Cache(resolve(opts.cacheDir ?? defaultCacheDir(root)));
  const say = opts.say ?? stderrWriter();
  const jobs = Math.max(1, Math.floor(opts.jobs ?? 1));
  const slots = new Slots(jobs);
  const dry = !!opts.dryRun;
  const lockFile = lockPath(root, exp.name);
  const owner: Owner = { experiment: exp.name, file: ownerFile(root, exp.file) };
  const prevLock = readLock(lockFile);
  const controller = new AbortController();
  const isTty = !dry && Deno.stderr.isTerminal();
  let progressShown = false;
  const line = (text: string) => {
    if (progressShown) {
      Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
      progressShown = false;
    }
    say(text);
  };

  for (const names of [opts.only ?? [], opts.force ?? []]) {
    for (const n of names) {
      if (!plan.instances.some((i) => matches(i, [n]))) {
        throw new Error(`no stage or instance "${n}" in ${exp.name}; stages: ${[...plan.byStage.keys()].join(", ")}`);
      }
    }
  }

  if (!dry) {
    const dirs = [...new Set(plan.instances.filter((i) => i.publish).map((i) => resolve(root, i.publish!)))];
    checkOwnership(root, owner, lockFile, dirs);
  }

  // Selection: --only stages and everything they need.
  let selected = plan.instances;
  if (opts.only?.length) {
    const want = new Set<string>();
    const add = (id: string) => {
      if (want.has(id)) return;
      want.add(id);
      for (const d of plan.byId.get(id)!.deps) add(d);
    };
    for (const i of plan.instances) if (matches(i, opts.only)) add(i.id);
    selected = plan.instances.filter((i) => want.has(i.id));
  }

  const outcomes = new Map<string, Promise<Outcome>>();
  /** Instances recomputed because their entry (or an upstream one) was damaged. */
  const rederived = new Set<string>();
  const process = (inst: Instance): Promise<Outcome> =>
    processInner(inst).catch(async (e) => {
      const msg = isNoSpace(e)
        ? await noSpaceMessage(cache.dir, `stage ${inst.id}`)
        : (e as Error)?.message ?? String(e);
      line(`strata: FAILED  ${inst.id}: ${msg}`);
      if (opts.verbose) line(String((e as Error)?.stack ?? e));
      return { id: inst.id, stage: inst.stage, state: "failed" as const, reasons: [msg] };
    });
  const processInner = async (inst: Instance): Promise<Outcome> => {
    const deps = new Map<string, Outcome>();
    for (const d of inst.deps) deps.set(d, await outcomes.get(d)!);
    const base: Outcome = { id: inst.id, stage: inst.stage, state: "stale", reasons: [] };

    const failedDeps = [...deps.values()].filter((o) => o.state === "failed" || o.state === "blocked");
    if (failedDeps.length) {
      line(`strata: blocked ${inst.id}: upstream ${failedDeps.map((o) => o.id).join(", ")} failed`);
      return { ...base, state: "blocked", reasons: [`upstream ${failedDeps.map((o) => o.id).join(", ")} failed`] };
    }

    // Inputs.
    const inputs: Record<string, ResolvedInput[]> = {};
    const components: Record<string, InputComponent[]> = {};
    const staleUpstream: string[] = [];
    for (const [name, refs] of Object.entries(inst.inputs)) {
      const spec = inst.kind.inputs[name];
      const list: ResolvedInput[] = [];
      const comps: InputComponent[] = [];
      for (const ref of refs) {
        if (ref.type === "stage") {
          const up = deps.get(ref.instance)!;
          if (up.state === "skipped") {
            if (ref.optional) continue;
            return skip(
              base,
              `required input ${name} (${ref.instance}.${ref.output}) is absent: ${ref.instance} was skipped`,
            );
          }
          if (up.state === "stale") {
            staleUpstream.push(ref.instance);
            continue;
          }
          const out = up.manifest!.outputs[ref.output];
          const producer = plan.byId.get(ref.instance)!;
          list.push({
            path: join(up.entryDir!, "outputs", ref.output),
            stageId: ref.instance,
            output: ref.output,
            matrix: producer.matrix,
            kind: producer.kind.kind,
            params: producer.params,
            digest: out.digest,
          });
          comps.push({ from: `${ref.instance}.${ref.output}`, digest: out.digest, params: digestOf(producer.params) });
        } else {
          let d: ContentDigest;
          try {
            d = await contentDigest(ref.path, cache.digests);
          } catch (e) {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
            if (ref.optional) continue;
            return skip(base, `required input ${name} (${ref.text}) does not exist: ${displayPath(ref.path)}`);
          }
          const shown = ref.text.trim().replace(/\?$/, "");
          list.push({ path: ref.path, stageId: shown, output: "", matrix: {}, kind: "", params: {}, digest: d.digest });
          comps.push({ from: "path", digest: d.digest });
        }
      }
      if (!spec.optional && list.length === 0 && refs.length > 0 && staleUpstream.length === 0) {
        return skip(base, `required input ${name} is absent (${refs.map((r) => r.text).join(", ")})`);
      }
      inputs[name] = list;
      components[name] = comps;
    }
    if (staleUpstream.length) {
      return {
        ...base,
        state: "stale",
        reasons: [`upstream ${[...new Set(staleUpstream)].join(", ")} will run first`],
      };
    }

    const skipReason = await inst.kind.skip?.(inst.params, exp.dir);
    if (skipReason) return skip(base, skipReason);

    const code = codeDigest(inst.kind.module, cache.digests, root);
    const env = (await inst.kind.environment?.(inst.params)) ?? {};
    const comps: KeyComponents = {
      kind: inst.kind.kind,
      version: inst.kind.version,
      params: inst.params,
      inputs: components,
      code: code.digest,
      env,
      ...(inst.kind.keyedByContext ? { context: { experiment: exp.name, stage: inst.id } } : {}),
    };
    const key = keyOf(comps);
    const keyed: Outcome = { ...base, key, components: comps, codeFiles: code.files, entryDir: cache.entryDir(key) };
    let forced = !!opts.forceAll || matches(inst, opts.force ?? []);
    // An upstream entry found damaged was re-derived in this run: what was computed from it may have read the
    // bad bytes (the key holds the digests as recorded, not as read), so it is recomputed too.
    const tainted = inst.deps.filter((d) => rederived.has(d));
    if (tainted.length && !forced) {
      forced = true;
      line(`strata: recompute ${inst.id}: upstream ${tainted.join(", ")} was re-derived from a damaged cache entry`);
    }
    let damaged: string | undefined;

    if (!forced) {
      let manifest = cache.readManifest(key);
      if (manifest) {
        // Made before an upstream entry was re-derived from damaged bytes (in an earlier run, say with --only):
        // it may have read those bytes.
        const made = manifest.timings?.finished ?? "";
        const before = inst.deps.filter((d) => {
          const at = deps.get(d)?.manifest?.rederived;
          return at !== undefined && made < at;
        });
        if (before.length) damaged = `made from ${before.join(", ")} before it was re-derived from a damaged entry`;
        // Always: sizes and mtimes (cheap). With --verify: every byte.
        damaged ??= await cache.quickCheck(key, manifest);
        if (!damaged && opts.verify && !dry) damaged = await cache.verify(key);
        if (damaged) {
          if (!dry) {
            line(`strata: damaged cache entry for ${inst.id} (${damaged}); recomputing`);
            cache.remove(key);
          }
          manifest = undefined;
        }
      }
      if (manifest) return finish({ ...keyed, state: "cached", manifest }, inst);
    }
    if (dry) {
      const prev = prevLock?.stages[inst.id];
      let reasons = forced
        ? [tainted.length ? `upstream ${tainted.join(", ")} re-derived` : "forced"]
        : damaged
        ? [`damaged cache entry: ${damaged}`]
        : explainChange(prev, comps, code.files);
      if (reasons.length === 0) reasons = ["cache entry missing (removed by gc?)"];
      return { ...keyed, state: "stale", reasons };
    }
    const rederive = forced && tainted.length > 0 || !!damaged;

    await slots.acquire(inst.kind.resources ?? []);
    try {
      if (controller.signal.aborted) return { ...keyed, state: "failed", reasons: ["interrupted"] };
      const release = await cache.lock(key);
      try {
        if (!forced) {
          const manifest = cache.readManifest(key);
          if (manifest) return finish({ ...keyed, state: "cached", manifest }, inst);
        }
        const o = await compute(inst, keyed, comps, inputs, rederive);
        if (rederive && o.state === "ran") rederived.add(inst.id);
        return o;
      } finally {
        release();
      }
    } finally {
      slots.release(inst.kind.resources ?? []);
    }
  };

  const skip = (base: Outcome, reason: string): Outcome => {
    if (!dry) line(`strata: skip    ${base.id}: ${reason}`);
    // What a skipped stage published before no longer describes this run.
    const inst = plan.byId.get(base.id);
    if (!dry && inst?.publish) prunePublished(resolve(root, inst.publish), inst.id, owner, [], line);
    return { ...base, state: "skipped", reasons: [reason] };
  };

  const finish = (o: Outcome, inst: Instance): Outcome => {
    if (o.state === "cached" && !dry) line(`strata: cached  ${inst.id}`);
    if (inst.publish && o.manifest && !dry) {
      o.published = publishOutputs(
        resolve(root, inst.publish),
        inst.id,
        owner,
        o.entryDir!,
        o.manifest.outputs,
        cache.digests,
        line,
      );
    }
    return o;
  };

  const compute = async (
    inst: Instance,
    keyed: Outcome,
    comps: KeyComponents,
    inputs: Record<string, ResolvedInput[]>,
    rederive: boolean,
  ): Promise<Outcome> => {
    const key = keyed.key!;
    cache.cleanTmp(key);
    const tmp = cache.newTmp(key);
    const outDir = join(tmp, "outputs");
    Deno.mkdirSync(outDir);
    const scratch = cache.scratchDir(key);
    Deno.mkdirSync(scratch, { recursive: true });
    for (const [name, o] of Object.entries(inst.kind.outputs)) {
      if (o.type === "dir") Deno.mkdirSync(join(outDir, name));
    }
    const log = Deno.openSync(join(tmp, "log.txt"), { write: true, create: true, append: true });
    const writeLog = (msg: string) => {
      log.writeSync(enc.encode(msg.endsWith("\n") ? msg : msg + "\n"));
      if (opts.verbose) { for (const l of msg.replace(/\n$/, "").split("\n")) line(`  [${inst.id}] ${l}`); }
    };
    let lastProgress = -Infinity;
    const ctx: StageContext<unknown> = {
      params: inst.params,
      inputs,
      input(name: string): string {
        const list = inputs[name];
        if (!(name in inst.kind.inputs)) {
          throw new Error(`stage ${inst.id}: kind ${inst.kind.kind} has no input "${name}"`);
        }
        if (!list || list.length === 0) throw new Error(`stage ${inst.id}: input "${name}" is absent`);
        if (list.length > 1) {
          throw new Error(`stage ${inst.id}: input "${name}" has ${list.length} values; use ctx.inputs`);
        }
        return list[0].path;
      },
      optionalInput(name: string): string | undefined {
        const list = inputs[name];
        return list && list.length ? ctx.input(name) : undefined;
      },
      output(name: string): string {
        if (!(name in inst.kind.outputs)) {
          throw new Error(`stage ${inst.id}: kind ${inst.kind.kind} has no output "${name}"`);
        }
        return join(outDir, name);
      },
      workDir: tmp,
      stageId: inst.id,
      experiment: exp.name,
      experimentDir: exp.dir,
      matrix: inst.matrix,
      scratch,
      log: writeLog,
      progress(message: string): void {
        if (!isTty) return;
        const now = performance.now();
        if (now - lastProgress < 100) return;
        lastProgress = now;
        const text = `[${inst.id}] ${message}`.slice(0, safeColumns() - 1);
        Deno.stderr.writeSync(enc.encode(`\r\x1b[K${text}`));
        progressShown = true;
      },
      signal: controller.signal,
    };
    const started = new Date();
    line(`strata: start   ${inst.id} (${inst.kind.kind})`);
    let result: StageResult | void;
    try {
      writeLog(`# ${inst.id} (${inst.kind.kind} v${inst.kind.version}) key ${key}`);
      // The reserve ($STRATA_MIN_FREE_MB) must be free before a stage starts; kinds writing large outputs check
      // their estimate themselves (ensureFreeSpace).
      await ensureFreeSpace(cache.dir, 0, `stage ${inst.id}`);
      result = await inst.kind.run(ctx);
      for (const [name, o] of Object.entries(inst.kind.outputs)) {
        let st: Deno.FileInfo;
        try {
          st = Deno.statSync(join(outDir, name));
        } catch {
          throw new Error(`stage ${inst.id} did not write its output "${name}"`);
        }
        if (o.type === "file" && !st.isFile) throw new Error(`stage ${inst.id}: output "${name}" must be a file`);
        if (o.type === "dir" && !st.isDirectory) {
          throw new Error(`stage ${inst.id}: output "${name}" must be a directory`);
        }
      }
      // The key holds the environment as planned; an output made in another one (a backend that failed at
      // run time and fell back, say) must not be committed under it.
      const after = (await inst.kind.environment?.(inst.params)) ?? {};
      if (digestOf(after) !== digestOf(comps.env)) {
        throw new Error(
          `stage ${inst.id}: its environment changed while it ran (planned ${JSON.stringify(comps.env)}, ` +
            `now ${JSON.stringify(after)}); nothing was cached: run it again`,
        );
      }
    } catch (e) {
      const seconds = (Date.now() - started.getTime()) / 1000;
      const msg = (e as Error)?.stack ?? String(e);
      writeLog(`FAILED: ${msg}`);
      log.close();
      const failedLog = join(cache.dir, "failed", `${inst.stage}.${key.slice(0, 12)}.log`);
      try {
        Deno.mkdirSync(join(cache.dir, "failed"), { recursive: true });
        Deno.renameSync(join(tmp, "log.txt"), failedLog);
      } catch { /* keep going */ }
      removeQuietly(tmp);
      const first = isNoSpace(e)
        ? await noSpaceMessage(cache.dir, `stage ${inst.id}`)
        : ((e as Error)?.message ?? String(e)).split("\n")[0];
      line(`strata: FAILED  ${inst.id} after ${formatSeconds(seconds)}: ${first} (log: ${displayPath(failedLog)})`);
      return { ...keyed, state: "failed", seconds, reasons: [first] };
    }
    log.close();
    const finished = new Date();
    const seconds = (finished.getTime() - started.getTime()) / 1000;
    const fresh = new DigestCache(undefined);
    const outputs: Record<string, ContentDigest> = {};
    const mtimes: Record<string, number[]> = {};
    for (const name of Object.keys(inst.kind.outputs)) {
      outputs[name] = await contentDigest(join(outDir, name), fresh);
      mtimes[name] = outputMtimes(join(outDir, name), outputs[name]);
    }
    const manifest: EntryManifest = {
      version: 1,
      key,
      stage: inst.id,
      components: comps,
      outputs,
      summary: (result && result.summary) ?? {},
      notes: (result && result.notes) ?? [],
      timings: { started: started.toISOString(), finished: finished.toISOString(), seconds },
      mtimes,
      // Entries downstream made before this moment may hold what was computed from the damaged bytes.
      ...(rederive ? { rederived: started.toISOString() } : {}),
    };
    cache.writeEntryFiles(tmp, manifest);
    cache.commit(tmp, key);
    removeQuietly(scratch);
    line(`strata: done    ${inst.id} in ${formatSeconds(seconds)}`);
    for (const n of manifest.notes) line(`strata:   note: ${n}`);
    return finish({ ...keyed, state: "ran", manifest, seconds }, inst);
  };

  // SIGINT (Ctrl-C) and SIGTERM (kill, a CI timeout, a container stop) alike: running stages are aborted,
  // their temporary folders removed, and the lock written for what finished.
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = new Map<Deno.Signal, () => void>();
  let interrupted: Deno.Signal | undefined;
  const onSignal = (sig: Deno.Signal) => {
    // A second signal: stop now (`gc` removes what is left).
    if (controller.signal.aborted) Deno.exit(sig === "SIGTERM" ? 143 : 130);
    interrupted = sig;
    line(
      `strata: ${sig === "SIGTERM" ? "terminated" : "interrupted"}; stopping running stages (again to exit at once)`,
    );
    controller.abort(new Error("interrupted"));
  };
  const runLock = dry ? undefined : await cache.runLock(false);
  if (!dry) {
    for (const sig of signals) {
      try {
        const h = () => onSignal(sig);
        Deno.addSignalListener(sig, h);
        handlers.set(sig, h);
      } catch { /* unsupported */ }
    }
  }
  try {
    for (const inst of selected) outcomes.set(inst.id, process(inst));
    const results: Outcome[] = [];
    for (const inst of selected) results.push(await outcomes.get(inst.id)!);
    const ok = results.every((o) => o.state !== "failed" && o.state !== "blocked");
    if (!dry) {
      const lock = buildLock(plan, results, prevLock, root);
      try {
        writeLock(lockFile, lock);
      } catch (e) {
        if (isNoSpace(e)) throw new Error(await noSpaceMessage(lockFile, "writing the lock"));
        throw new Error(`cannot write the lock ${lockFile}: ${(e as Error).message}`);
      }
      cache.digests.save();
    }
    return {
      experiment: exp.name,
      outcomes: results,
      ok,
      lockPath: lockFile,
      seconds: (performance.now() - t0) / 1000,
      ...(interrupted ? { interrupted } : {}),
    };
  } finally {
    runLock?.close();
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  }
}

function safeColumns(): number {
  try {
    const c = Deno.consoleSize().columns;
    return c >= 20 ? c : 120;
  } catch {
    return 120;
  }
}

function buildLock(plan: Plan, results: Outcome[], prev: LockFile | undefined, root: string): LockFile {
  const stages: Record<string, StageRecord> = {};
  const now = new Map(results.map((o) => [o.id, o]));
  for (const inst of plan.instances) {
    const o = now.get(inst.id);
    const old = prev?.stages[inst.id];
    if (o && o.manifest) {
      const m = o.manifest;
      stages[inst.id] = {
        stage: inst.stage,
        kind: inst.kind.kind,
        key: o.key,
        components: o.components,
        code_files: o.codeFiles,
        outputs: Object.fromEntries(Object.entries(m.outputs).map(([k, v]) => [k, v.digest])),
        timings: m.timings,
        summary: m.summary,
        ...(m.notes.length ? { notes: m.notes } : {}),
      };
    } else if (o && o.state === "skipped") {
      stages[inst.id] = { stage: inst.stage, kind: inst.kind.kind, skipped: o.reasons.join("; ") };
    } else if (old) {
      stages[inst.id] = old; // failed, blocked or not selected: keep what was there
    }
  }
  return {
    version: 1,
    experiment: plan.experiment.name,
    file: ownerFile(root, plan.experiment.file),
    environment: machineEnvironment(root),
    stages,
  };
}
