/** Layers and parameter containers for strata's tfjs models (PyTorch names, tfjs layouts). */
export * from "./params.ts";
export * from "./state.ts";
export * from "./layers.ts";
export * from "./attention.ts";
export * from "./positional.ts";
export * from "./resize.ts";
export * from "./rng.ts";
