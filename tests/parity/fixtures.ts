/**
 * The torchvision reference fixtures, generated on demand by generate_fixtures.py with
 * Debian's python3-torch / python3-torchvision into .cache/parity/<hash of the generator>/,
 * so a changed generator regenerates them. Missing PyTorch is a failure, never a skip.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { exists } from "../../packages/core/io/exists.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const GENERATOR = join(HERE, "generate_fixtures.py");
/** Debian's interpreter: the one python3-torch installs into. */
const PYTHON = Deno.env.get("DERMAGPU_TORCH_PYTHON") ?? "/usr/bin/python3";

export const PARITY_MODELS = ["resnet18", "densenet121", "mobilenet_v2", "efficientnet_b0"];

let ready: Promise<string> | null = null;

async function hash(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function generate(): Promise<string> {
  const dir = join(ROOT, ".cache", "parity", await hash(GENERATOR));
  if (await exists(join(dir, PARITY_MODELS.at(-1)!, "meta.json"))) return dir;
  const tmp = `${dir}.tmp-${Deno.pid}`;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(PYTHON, {
      args: [GENERATOR, tmp],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  } catch (e) {
    throw new Error(
      `cannot run ${PYTHON} (${
        (e as Error).message
      }): apt-get install python3-torch python3-torchvision`,
    );
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(
      `generating torchvision fixtures failed (${err}): apt-get install python3-torch python3-torchvision`,
    );
  }
  await Deno.rename(tmp, dir).catch(async (e) => {
    // Another test process won the race: use its fixtures.
    if (!(await exists(dir))) throw e;
    await Deno.remove(tmp, { recursive: true });
  });
  return dir;
}

/** The fixture folder, generating it once per generator version. */
export function parityFixtures(): Promise<string> {
  ready ??= generate();
  return ready;
}
