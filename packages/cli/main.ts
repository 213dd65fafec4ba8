/**
 * dermagpu command line. Each command lives in `commands/<name>.ts` and exports
 * `run(args: string[]): Promise<void>`; it is loaded only when asked for.
 */
const COMMANDS: Record<string, { file: string; summary: string }> = {
  train: { file: "./commands/train.ts", summary: "train and compare the four CNNs" },
  evaluate: { file: "./commands/evaluate.ts", summary: "evaluate a checkpoint on a labelled set" },
  predict: { file: "./commands/predict.ts", summary: "classify an image or a .npy batch" },
  "data:inspect": { file: "./commands/data_inspect.ts", summary: "summarise a HAM10000 folder" },
  "data:split": { file: "./commands/data_split.ts", summary: "write a split manifest" },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(14)} ${v.summary}`);
  return `usage: dermagpu <command> [options]\n\ncommands:\n${lines.join("\n")}`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command '${name}'\n${usage()}`);
    return 2;
  }
  const mod = await import(command.file) as { run(args: string[]): Promise<void> };
  try {
    await mod.run(rest);
    return 0;
  } catch (err) {
    // Expected failures (bad input, missing data) print one line; bugs keep their stack.
    if (err instanceof Error && err.name === "UserError") {
      console.error(`error: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
