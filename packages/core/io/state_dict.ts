/**
 * The in-memory form of a model's weights (`StateDict`), conversions from file dtypes, key
 * adapters for checkpoints written by other tools, and the strict key/shape check.
 */
import { UserError } from "../errors.ts";
import type { DType, RawTensor } from "./dtypes.ts";
import { bfloat16ToFloat32, float16ToFloat32 } from "./f16.ts";

/**
 * dtypes a `StateDict` holds. Floats are always float32 (float16, bfloat16 and float64 are
 * converted on load); int64 stays int64 in a `BigInt64Array` (lossless; e.g. BatchNorm's
 * `num_batches_tracked`, read it with `Number(t.data[0])`); int16/int8 widen to int32;
 * uint8 and bool are bytes.
 */
export type StateDType = "float32" | "int64" | "int32" | "uint8" | "bool";

export interface StateTensor {
  dtype: StateDType;
  /** Row-major shape; `[]` for a scalar (one element). */
  shape: number[];
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

/** Tensor name (torchvision-style dotted key) -> tensor, in file order. */
export type StateDict = Map<string, StateTensor>;

/** Converts a file tensor to a `StateTensor` (copies only when the dtype changes). */
export function toStateTensor(t: RawTensor): StateTensor {
  const shape = t.shape.slice();
  const d = t.dtype as DType;
  switch (d) {
    case "float32":
      return { dtype: "float32", shape, data: t.data as Float32Array };
    case "float16":
      return { dtype: "float32", shape, data: float16ToFloat32(t.data as Uint16Array) };
    case "bfloat16":
      return { dtype: "float32", shape, data: bfloat16ToFloat32(t.data as Uint16Array) };
    case "float64":
      return { dtype: "float32", shape, data: Float32Array.from(t.data as Float64Array) };
    case "int64":
      return { dtype: "int64", shape, data: t.data as BigInt64Array };
    case "int32":
      return { dtype: "int32", shape, data: t.data as Int32Array };
    case "int16":
    case "int8":
      return { dtype: "int32", shape, data: Int32Array.from(t.data as Int16Array) };
    case "uint8":
      return { dtype: "uint8", shape, data: t.data as Uint8Array };
    case "bool":
      return { dtype: "bool", shape, data: t.data as Uint8Array };
  }
}

/** Keys under which checkpoints from other tools nest the actual state_dict. */
export const WRAPPER_KEYS: readonly string[] = ["state_dict", "model_state_dict", "model"];

/**
 * Finds the tensor dict inside a loaded checkpoint object: returns `root` itself when it holds a
 * tensor (per `isTensor`), otherwise descends into the first `WRAPPER_KEYS` entry that is a dict
 * (e.g. `{"epoch": 3, "state_dict": {...}}`), up to 8 levels. Returns `root` unchanged if no
 * level holds tensors; the caller reports that.
 */
export function unwrapCheckpoint(
  root: Map<unknown, unknown>,
  isTensor: (v: unknown) => boolean,
): Map<unknown, unknown> {
  let cur = root;
  for (let depth = 0; depth < 8; depth++) {
    for (const v of cur.values()) if (isTensor(v)) return cur;
    const next = WRAPPER_KEYS.map((k) => cur.get(k)).find((v) => v instanceof Map);
    if (!(next instanceof Map)) return root;
    cur = next;
  }
  return root;
}

/** Removes `prefix` (default "module.", from nn.DataParallel) from every key that has it. */
export function stripPrefix(sd: StateDict, prefix = "module."): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) out.set(k.startsWith(prefix) ? k.slice(prefix.length) : k, v);
  return out;
}

const DENSENET_OLD_KEY =
  /^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$/;

/** One key renamed like torchvision's DenseNet `_load_state_dict` (`norm.1.weight` -> `norm1.weight`). */
export function renameDenseNetKey(key: string): string {
  const m = DENSENET_OLD_KEY.exec(key);
  return m ? m[1] + m[2] : key;
}

/** Renames old DenseNet keys (see `renameDenseNetKey`) in a state_dict. */
export function renameDenseNetKeys(sd: StateDict): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) out.set(renameDenseNetKey(k), v);
  return out;
}

/** The default key adapters: strip "module." and rename old DenseNet keys. */
export function normalizeKeys(sd: StateDict): StateDict {
  return renameDenseNetKeys(stripPrefix(sd, "module."));
}

export interface CheckStrictOptions {
  /** Keys starting with any of these are ignored on both sides (e.g. ["fc.", "classifier."]). */
  skipPrefixes?: string[];
  /** Expected keys with these suffixes may be absent (default ["num_batches_tracked"]). */
  optionalSuffixes?: string[];
  /** The weights file, named in the error. */
  file?: string;
  /** How to fix a head mismatch, appended to the error (default mentions skipPrefixes). */
  hint?: string;
}

export interface CheckStrictResult {
  /** Optional expected keys (e.g. `num_batches_tracked`) that the file lacks; fill them in. */
  missingOptional: string[];
}

const fmtShape = (s: readonly number[]) => `[${s.join(",")}]`;

/**
 * Checks `sd` against the model's expected keys and shapes. Throws ONE `UserError` listing every
 * missing, unexpected and shape-mismatched key (counts first, then the keys), with a hint.
 */
export function checkStrict(
  sd: StateDict,
  expected: ReadonlyMap<string, readonly number[]>,
  options: CheckStrictOptions = {},
): CheckStrictResult {
  const skip = options.skipPrefixes ?? [];
  const optional = options.optionalSuffixes ?? ["num_batches_tracked"];
  const skipped = (k: string) => skip.some((p) => k.startsWith(p));
  const missing: string[] = [];
  const missingOptional: string[] = [];
  const mismatched: string[] = [];
  const unexpected: string[] = [];
  for (const [k, shape] of expected) {
    if (skipped(k)) continue;
    const t = sd.get(k);
    if (!t) {
      if (optional.some((s) => k.endsWith(s))) missingOptional.push(k);
      else missing.push(k);
    } else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      mismatched.push(`${k} (file ${fmtShape(t.shape)}, model ${fmtShape(shape)})`);
    }
  }
  for (const k of sd.keys()) if (!skipped(k) && !expected.has(k)) unexpected.push(k);
  if (missing.length + mismatched.length + unexpected.length === 0) return { missingOptional };
  const parts: string[] = [];
  if (missing.length) parts.push(`${missing.length} missing key(s): ${missing.join(", ")}`);
  if (unexpected.length) {
    parts.push(`${unexpected.length} unexpected key(s): ${unexpected.join(", ")}`);
  }
  if (mismatched.length) {
    parts.push(`${mismatched.length} shape mismatch(es): ${mismatched.join(", ")}`);
  }
  let hint = options.hint;
  if (!hint) {
    const allModule = [...sd.keys()].length > 0 &&
      [...sd.keys()].every((k) => k.startsWith("module."));
    hint = allModule
      ? `the keys start with "module." (saved from DataParallel); strip that prefix`
      : `check that the weights are for this architecture; if only the classifier head differs ` +
        `(e.g. 1000 ImageNet classes vs 7), skip it (skipPrefixes such as "fc." or "classifier.") ` +
        `and train a new head`;
  }
  const where = options.file ? `${options.file}: ` : "";
  throw new UserError(
    `${where}weights do not match the model: ${parts.join("; ")}. Fix: ${hint}`,
  );
}
