/** Helpers for the end-to-end tests: run the CLI as a subprocess on the real HAM10000 folder. */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** HAM10000_DIR, else the shared read-only copy next to the repository. */
export const DATA: string = Deno.env.get("HAM10000_DIR") ??
  resolve(ROOT, "../shared/data/ham10000");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Arguments for `deno run -A packages/cli/main.ts ...args`. */
export function cliCommand(args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "packages/cli/main.ts"), ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs the CLI to completion. */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const out = await cliCommand(args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** stderr without the driver's XDG_RUNTIME_DIR warnings. */
export function errors(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() && !/XDG_RUNTIME_DIR/.test(l));
}

export { exists } from "../../packages/core/io/exists.ts";
