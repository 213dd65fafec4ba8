/**
 * Loading weights from any supported file (format chosen by magic bytes, not by extension) and
 * saving a StateDict as safetensors atomically.
 */
import { basename, join } from "node:path";
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "./atomic.ts";
import { isNpy, readNpy } from "./npy.ts";
import { isSafetensors, readSafetensors, writeSafetensors } from "./safetensors.ts";
import { normalizeKeys, type StateDict, toStateTensor } from "./state_dict.ts";
import { isTorchLegacy, loadTorch } from "./torch.ts";
import { isZip } from "./zip.ts";

export type WeightsFormat = "torch-zip" | "torch-legacy" | "safetensors" | "npy";

/** The format of a weights file from its first bytes, or undefined if unrecognised. */
export function detectWeightsFormat(bytes: Uint8Array): WeightsFormat | undefined {
  if (isZip(bytes)) return "torch-zip";
  if (isTorchLegacy(bytes)) return "torch-legacy";
  if (isNpy(bytes)) return "npy";
  if (isSafetensors(bytes)) return "safetensors";
  return undefined;
}

export interface LoadWeightsOptions {
  /** Keep keys exactly as stored (default false: apply `normalizeKeys`). */
  rawKeys?: boolean;
}

/**
 * Parses weights held in memory. `name` names the file in errors; for a `.npy` it also gives the
 * single tensor's key (the base name without ".npy"). Every failure is a `UserError`.
 */
export function parseWeights(
  bytes: Uint8Array,
  name: string,
  options: LoadWeightsOptions = {},
): StateDict {
  const format = detectWeightsFormat(bytes);
  let sd: StateDict;
  try {
    switch (format) {
      case "torch-zip":
      case "torch-legacy":
        sd = loadTorch(bytes, name);
        break;
      case "safetensors": {
        sd = new Map();
        for (const [k, t] of readSafetensors(bytes, name).tensors) sd.set(k, toStateTensor(t));
        break;
      }
      case "npy":
        sd = new Map([[basename(name).replace(/\.npy$/, ""), toStateTensor(readNpy(bytes, name))]]);
        break;
      default:
        throw new UserError(
          `${name}: unrecognised weights file format (expected a torch .pth/.pt checkpoint, ` +
            `.safetensors or .npy)`,
        );
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${name}: cannot read ${format} weights: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return options.rawKeys ? sd : normalizeKeys(sd);
}

/**
 * Loads weights from a file (torch ZIP or legacy checkpoint, safetensors, npy), or from a
 * directory of `.npy` files (one tensor each, keyed by file stem, in sorted order).
 */
export async function loadWeightsFile(
  path: string,
  options: LoadWeightsOptions = {},
): Promise<StateDict> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new UserError(`${path}: cannot open weights file: ${(e as Error).message}`);
  }
  if (info.isDirectory) {
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) {
      if (e.isFile && e.name.endsWith(".npy")) names.push(e.name);
    }
    if (names.length === 0) throw new UserError(`${path}: directory contains no .npy files`);
    names.sort();
    const sd: StateDict = new Map();
    for (const n of names) {
      for (
        const [k, v] of parseWeights(await Deno.readFile(join(path, n)), join(path, n), options)
      ) {
        sd.set(k, v);
      }
    }
    return sd;
  }
  return parseWeights(await Deno.readFile(path), path, options);
}

/**
 * Loads a safetensors file with its `__metadata__` (for resuming our own checkpoints).
 * Keys are kept exactly as stored.
 */
export async function loadSafetensorsFile(
  path: string,
): Promise<{ stateDict: StateDict; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new UserError(`${path}: cannot open checkpoint: ${(e as Error).message}`);
  }
  const { tensors, metadata } = readSafetensors(bytes, path);
  const stateDict: StateDict = new Map();
  for (const [k, t] of tensors) stateDict.set(k, toStateTensor(t));
  return { stateDict, metadata };
}

/** Saves a StateDict (plus string metadata) as a safetensors file, atomically. */
export async function saveSafetensorsFile(
  path: string,
  stateDict: StateDict,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, writeSafetensors(stateDict, metadata));
}
