/**
 * Learning-rate schedules, as pure functions of the 0-based update index.
 *
 * - `constant`: `lr`.
 * - `step` (ABINet's MultiStepLR): `lr × factor^k`, k = number of milestones ≤ the current step (or epoch when
 *   `unit` is "epoch"). ABINet's published schedule is `{type: step, milestones: [6], unit: epoch, factor: 0.1}`
 *   over 10 epochs (its `periods: [6, 4]`).
 * - `cosine`: linear warm-up over `warmup_steps`, then `min_lr + ½(lr − min_lr)(1 + cos(π t / T))`.
 * - `one_cycle` (PyTorch OneCycleLR, cosine annealing): from `lr / div_factor` up to `lr` over `pct_start` of the
 *   run, then down to `lr / div_factor / final_div_factor`.
 */
import * as s from "../pipeline/schema.ts";

export const scheduleSchema = s.object({
  type: s.string({ enum: ["constant", "step", "cosine", "one_cycle"] as const, default: "constant" }),
  milestones: s.array(s.number({ min: 0 }), {
    default: [],
    description: "`step`: where the lr is multiplied by `factor` (steps or epochs, see `unit`)",
  }),
  unit: s.string({ enum: ["step", "epoch"] as const, default: "step", description: "unit of `milestones`" }),
  factor: s.number({ min: 0, max: 1, default: 0.1, description: "`step`: multiplier at each milestone" }),
  warmup_steps: s.integer({ min: 0, default: 0, description: "`cosine`: linear warm-up steps" }),
  min_lr: s.number({ min: 0, default: 0, description: "`cosine`: final lr" }),
  pct_start: s.number({ min: 0, max: 1, default: 0.3, description: "`one_cycle`: share of the run spent rising" }),
  div_factor: s.number({ min: 1, default: 25, description: "`one_cycle`: initial lr = lr / div_factor" }),
  final_div_factor: s.number({ min: 1, default: 1e4, description: "`one_cycle`: final lr = initial / this" }),
});

export type ScheduleConfig = typeof scheduleSchema extends s.ObjectSchema<infer T> ? T : never;

/** Returns lr(step) for 0-based update indices over a run of `totalSteps`. */
export function makeSchedule(
  lr: number,
  cfg: ScheduleConfig,
  totalSteps: number,
  stepsPerEpoch: number,
): (step: number) => number {
  switch (cfg.type) {
    case "constant":
      return () => lr;
    case "step":
      return (step) => {
        const at = cfg.unit === "epoch" ? step / Math.max(1, stepsPerEpoch) : step;
        const k = cfg.milestones.filter((m) => m <= at).length;
        return lr * Math.pow(cfg.factor, k);
      };
    case "cosine":
      return (step) => {
        if (step < cfg.warmup_steps) return lr * (step + 1) / cfg.warmup_steps;
        const span = Math.max(1, totalSteps - cfg.warmup_steps);
        const t = Math.min(1, (step - cfg.warmup_steps) / span);
        return cfg.min_lr + 0.5 * (lr - cfg.min_lr) * (1 + Math.cos(Math.PI * t));
      };
    case "one_cycle":
      return (step) => {
        const initial = lr / cfg.div_factor;
        const final = initial / cfg.final_div_factor;
        // PyTorch's OneCycleLR: the rise ends at the (unrounded) step pct_start·T − 1.
        const up = Math.max(1, cfg.pct_start * totalSteps - 1);
        const down = Math.max(1, totalSteps - 1 - up);
        const cos = (from: number, to: number, t: number) => to + (from - to) / 2 * (1 + Math.cos(Math.PI * t));
        return step <= up ? cos(initial, lr, step / up) : cos(lr, final, Math.min(1, (step - up) / down));
      };
    default:
      throw new Error(`unknown schedule type "${cfg.type}"`);
  }
}
