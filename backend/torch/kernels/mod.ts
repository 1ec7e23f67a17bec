/** Registers every torch kernel (once per process). */
import { registerElementwise } from "./elementwise.ts";
import { registerNn } from "./nn.ts";
import { registerNorm, registerNormGradients } from "./norm.ts";
import { registerReduce } from "./reduce.ts";
import { registerShape } from "./shape.ts";
import { registerCheapGradients } from "../gradients.ts";

export { TORCH_KERNELS } from "./common.ts";

let registered = false;

export function registerTorchKernels(): void {
  if (registered) return;
  registered = true;
  registerElementwise();
  registerShape();
  registerReduce();
  registerNn();
  registerNorm();
  registerNormGradients();
  registerCheapGradients();
}
