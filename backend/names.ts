/**
 * The backend names a stage's `backend` param accepts, without loading tfjs (stage params are validated at
 * plan time). backend/select.ts tries them in this order when none is forced; "torch" means torch-cuda, else
 * torch-cpu.
 */
export const BACKEND_ORDER = ["torch-cuda", "tensorflow", "torch-cpu", "wasm", "webgpu", "cpu"] as const;
export type BackendName = typeof BACKEND_ORDER[number];
export const BACKEND_CHOICES = [...BACKEND_ORDER, "torch"] as const;
