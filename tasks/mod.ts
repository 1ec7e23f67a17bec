/**
 * Registers every stage kind. Kind modules keep heavy imports (tfjs, lmdb,
 * canvas) inside `run`, so loading this stays cheap for cached reruns.
 */
import "./conaug_montage.ts";
import "./download.ts";
import "./evaluate.ts";
import "./import.ts";
import "./pretrain_lm.ts";
import "./report.ts";
import "./stats.ts";
import "./synth.ts";
import "./train.ts";
import "./weights.ts";
