/** Loads every model family (models/mod.ts) on demand, so that importing a stage kind does not load tfjs. */
export async function loadModelFamilies(): Promise<void> {
  try {
    await import("../models/mod.ts");
  } catch (e) {
    // Without models/mod.ts (e.g. a test with its own family) only the families already registered are known.
    if (!(e instanceof TypeError && /Module not found|Cannot find module/.test(e.message))) throw e;
  }
}
