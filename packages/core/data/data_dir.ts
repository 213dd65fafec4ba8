/**
 * Where the HAM10000 folder is: `--data DIR`, else the env variable HAM10000_DIR, else ./data.
 * The folder must hold a metadata CSV (see METADATA_NAMES).
 */
import { join, resolve } from "node:path";
import { UserError } from "../errors.ts";

/** Metadata file names tried in a data folder, in this order. */
export const METADATA_NAMES = [
  "HAM10000_metadata.csv",
  "HAM10000_metadata",
  "HAM10000_metadata_with_dataset.csv",
  "metadata.csv",
];

export interface DataDir {
  /** Absolute path of the data folder. */
  dir: string;
  /** Absolute path of its metadata CSV. */
  metadata: string;
  /** How the folder was chosen: "--data", "HAM10000_DIR" or "default". */
  source: "--data" | "HAM10000_DIR" | "default";
}

/**
 * Resolves the data folder. `data` (the --data flag) wins over `env` HAM10000_DIR, which wins
 * over `./data`. Throws a UserError naming every place searched when no metadata is found.
 */
export async function resolveDataDir(
  data?: string,
  env: { get(key: string): string | undefined } = Deno.env,
): Promise<DataDir> {
  const fromEnv = env.get("HAM10000_DIR");
  const [dir, source] = data
    ? [data, "--data" as const]
    : fromEnv
    ? [fromEnv, "HAM10000_DIR" as const]
    : ["./data", "default" as const];
  const abs = resolve(dir);
  const searched = METADATA_NAMES.map((n) => join(abs, n));
  for (const path of searched) {
    if (await isFile(path)) return { dir: abs, metadata: path, source };
  }
  const how = source === "--data"
    ? `from --data`
    : source === "HAM10000_DIR"
    ? `from HAM10000_DIR`
    : `(no --data flag and HAM10000_DIR is not set)`;
  throw new UserError(
    `no HAM10000 metadata found in ${abs} ${how}; searched ${searched.join(", ")}. ` +
      `Point at the folder holding HAM10000_metadata.csv with --data DIR or HAM10000_DIR=DIR`,
  );
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
