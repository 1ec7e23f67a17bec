/**
 * strata's command line: `deno task <command>` maps here. Each command is a
 * module exporting `main(args): Promise<number>`, loaded lazily so that a
 * cached `reproduce` does not pay for loading tfjs.
 */
const commands: Record<string, { summary: string; load: () => Promise<{ main(args: string[]): Promise<number> }> }> = {
  run: { summary: "run an experiment's stale stages", load: () => import("./run.ts") },
  reproduce: {
    summary: "run the default experiment and print the report's path",
    load: () => import("./reproduce.ts"),
  },
  status: { summary: "show which stages are fresh or stale, and why", load: () => import("./status.ts") },
  gc: { summary: "remove cache entries no experiment lock references", load: () => import("./gc.ts") },
  diff: { summary: "compare two experiments' reports or locks", load: () => import("./diff.ts") },
  stats: { summary: "summarise an LMDB or an image folder", load: () => import("./stats.ts") },
  read: { summary: "recognise the text in images with a checkpoint", load: () => import("./read.ts") },
  export: { summary: "write a checkpoint's state dict as a torch.save file", load: () => import("./export.ts") },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    const width = Math.max(...Object.keys(commands).map((k) => k.length));
    console.error(
      `usage: strata <command> [options]\n\ncommands:\n${
        Object.entries(commands).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`).join("\n")
      }\n\nRun \`strata <command> --help\` for a command's options.`,
    );
    return name && name !== "--help" && name !== "-h" ? 2 : 0;
  }
  try {
    return await (await command.load()).main(rest);
  } catch (e) {
    // Whatever a command did not catch itself: one line naming what failed, no stack trace
    // (STRATA_DEBUG=1 shows it).
    const err = e as Error;
    console.error(`strata ${name}: error: ${Deno.env.get("STRATA_DEBUG") ? err?.stack ?? e : err?.message ?? e}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
