/**
 * ImageNet-pretrained MobileNetV2 1.0/224 from Google's TF-slim release, as a folder of `.npy`
 * files with BatchNorm folded into every convolution (see PROVENANCE.md and mapping.json beside
 * them), loaded into our torchvision-structured `MobileNetV2`:
 *
 * - conv weights OHWI -> torch OIHW (transpose 0,3,1,2); depthwise (1,H,W,C) -> (C,1,H,W)
 *   (transpose 3,0,1,2);
 * - each conv's folded bias becomes the following BatchNorm2d: weight 1, bias = the bias,
 *   running_mean 0, running_var 1 - eps, so eval-mode BN is x / sqrt(1) + bias;
 * - the model pads as TensorFlow's "SAME" (`tfPadding: true`);
 * - inputs are scaled to [-1, 1] (`x / 127.5 - 1`): `TFSLIM_NORMALIZE`;
 * - the 1001-class logits weight is not in the folder, so the classifier stays freshly
 *   initialised for `numClasses` (transfer learning replaces it anyway).
 *
 * The model is in eval mode after loading: training mode would normalise with batch statistics
 * and so undo the folded BatchNorm.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../core/errors.ts";
import { loadWeightsFile } from "../core/io/load.ts";
import type { StateDict, StateTensor } from "../core/io/state_dict.ts";
import type { Tensor } from "../core/tensor.ts";
import { globalAvgPool } from "../core/ops/pool.ts";
import type { Normalize } from "../kernels/ops/augment.ts";
import { loadStateDict } from "./load_weights.ts";
import { type MobileNetV2, mobilenetV2, type MobileNetV2Options } from "./mobilenet_v2.ts";

/** The preprocessing these weights expect: RGB bytes to [-1, 1] (`x / 127.5 - 1`). */
export const TFSLIM_NORMALIZE: Normalize = "minus1to1";

/** BatchNorm2d's eps in torchvision's MobileNetV2 (and ours). */
export const BN_EPS = 1e-5;

/** The folder in the shared weights store beside this repository (../shared/weights/...). */
export function defaultTfSlimDir(): string {
  return fileURLToPath(
    new URL(
      "../../../shared/weights/mobilenet_v2/tfslim_mobilenet_v2_1.0_224_fp32_bnfolded_npy",
      import.meta.url,
    ),
  );
}

/** One convolution of mapping.json. */
export interface TfSlimEntry {
  /** TF-slim scope, e.g. "expanded_conv_1/depthwise". */
  tf: string;
  /** The weight's file name, e.g. "Const_90.npy". */
  weight: string;
  /** The folded bias's file name. */
  bias: string;
  /** The torchvision conv weight key, e.g. "features.0.0.weight". */
  torchKey: string;
  /** The torchvision (OIHW) shape of the weight. */
  torchShape: number[];
  depthwise: boolean;
}

const stem = (file: string) => file.replace(/\.npy$/, "");
const fmt = (s: readonly number[]) => `[${s.join(",")}]`;
const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * The feature convolutions listed in a parsed mapping.json (`file` is named in errors). The
 * logits entry (absent weight, `classifier.*` key) is left out.
 */
export function parseTfSlimMapping(json: unknown, file: string): TfSlimEntry[] {
  const bad = (why: string) =>
    new UserError(`${file}: ${why}; restore mapping.json from the weights folder's original copy`);
  const entries = (json as { entries?: unknown })?.entries;
  if (!Array.isArray(entries)) throw bad("no 'entries' array");
  const out: TfSlimEntry[] = [];
  for (const [i, e] of entries.entries()) {
    const key = e?.torchvision_key;
    if (typeof key !== "string") throw bad(`entry ${i} has no torchvision_key`);
    if (!key.startsWith("features.")) continue;
    const shape = e.torch_shape;
    if (
      typeof e.weight !== "string" || typeof e.bias !== "string" ||
      !/^features\.[\d.a-z]+\.weight$/.test(key) || !Array.isArray(shape) || shape.length !== 4 ||
      !shape.every((d: unknown) => Number.isInteger(d) && (d as number) > 0) ||
      typeof e.layout !== "string"
    ) {
      throw bad(`entry ${i} (${key}) lacks weight, bias, layout or a 4-d torch_shape`);
    }
    const depthwise = e.layout.startsWith("IHWO");
    if (!depthwise && e.layout !== "OHWI") throw bad(`entry ${i} has unknown layout '${e.layout}'`);
    out.push({
      tf: String(e.tf ?? key),
      weight: e.weight,
      bias: e.bias,
      torchKey: key,
      torchShape: shape,
      depthwise,
    });
  }
  if (out.length === 0) throw bad("no features.* entries");
  return out;
}

/** Reads and parses `<dir>/mapping.json`. */
export async function readTfSlimMapping(dir: string): Promise<TfSlimEntry[]> {
  const file = join(dir, "mapping.json");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new UserError(
      `${file}: cannot read the TF-slim mapping (${(e as Error).message}); ` +
        `pass the folder that holds the .npy files and mapping.json`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: invalid JSON (${(e as Error).message}); restore the file`);
  }
  return parseTfSlimMapping(json, file);
}

/** The BatchNorm2d key prefix after a conv weight key: "features.1.conv.1.weight" -> "features.1.conv.2.". */
export function bnPrefixFor(convKey: string): string {
  const m = /^(.*)\.(\d+)\.weight$/.exec(convKey);
  if (!m) throw new Error(`not a Sequential conv weight key: ${convKey}`);
  return `${m[1]}.${Number(m[2]) + 1}.`;
}

/** Permutes a row-major 4-d array: out shape = perm.map(i => shape[i]). */
function transpose4(data: Float32Array, shape: readonly number[], perm: readonly number[]) {
  const outShape = perm.map((i) => shape[i]);
  const inStride = [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1];
  const s = perm.map((i) => inStride[i]);
  const out = new Float32Array(data.length);
  const [A, B, C, D] = outShape;
  let o = 0;
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const base = a * s[0] + b * s[1] + c * s[2];
        for (let d = 0; d < D; d++) out[o++] = data[base + d * s[3]];
      }
    }
  }
  return { data: out, shape: outShape };
}

export interface TfSlimStateDictOptions {
  /** The folder, named in errors (default "the TF-slim weights folder"). */
  dir?: string;
  eps?: number;
}

/**
 * The torchvision-keyed state_dict (PyTorch layouts) of MobileNetV2's `features.*` from the
 * TF-slim tensors `sd` (keyed by file stem, as `loadWeightsFile(dir)` gives them). Every file
 * the mapping names must be present, float32 and of the expected shape; otherwise ONE UserError
 * lists every problem.
 */
export function tfSlimStateDict(
  sd: StateDict,
  mapping: readonly TfSlimEntry[],
  opts: TfSlimStateDictOptions = {},
): StateDict {
  const dir = opts.dir ?? "the TF-slim weights folder";
  const eps = opts.eps ?? BN_EPS;
  const problems: string[] = [];
  const get = (file: string, want: number[], why: string): StateTensor | null => {
    const t = sd.get(stem(file));
    if (!t) {
      problems.push(`${file} missing (${why})`);
      return null;
    }
    if (t.dtype !== "float32" || !sameShape(t.shape, want)) {
      problems.push(
        `${file} is ${t.dtype} ${fmt(t.shape)}, expected float32 ${fmt(want)} (${why})`,
      );
      return null;
    }
    return t;
  };
  const out: StateDict = new Map();
  for (const e of mapping) {
    const [O, I, KH, KW] = e.torchShape;
    const fileShape = e.depthwise ? [1, KH, KW, O] : [O, KH, KW, I];
    if (e.depthwise && I !== 1) {
      problems.push(
        `${e.weight}: depthwise torch_shape ${fmt(e.torchShape)} needs 1 input channel`,
      );
      continue;
    }
    const w = get(e.weight, fileShape, e.torchKey);
    const bnPrefix = bnPrefixFor(e.torchKey);
    const b = get(e.bias, [O], `${bnPrefix}bias`);
    if (!w || !b) continue;
    const perm = e.depthwise ? [3, 0, 1, 2] : [0, 3, 1, 2];
    const t = transpose4(w.data as Float32Array, w.shape, perm);
    out.set(e.torchKey, { dtype: "float32", shape: t.shape, data: t.data });
    out.set(`${bnPrefix}weight`, {
      dtype: "float32",
      shape: [O],
      data: new Float32Array(O).fill(1),
    });
    out.set(`${bnPrefix}bias`, {
      dtype: "float32",
      shape: [O],
      data: Float32Array.from(b.data as Float32Array),
    });
    out.set(`${bnPrefix}running_mean`, { dtype: "float32", shape: [O], data: new Float32Array(O) });
    out.set(`${bnPrefix}running_var`, {
      dtype: "float32",
      shape: [O],
      data: new Float32Array(O).fill(1 - eps),
    });
    out.set(`${bnPrefix}num_batches_tracked`, {
      dtype: "int64",
      shape: [],
      data: new BigInt64Array(1),
    });
  }
  if (problems.length > 0) {
    throw new UserError(
      `${dir}: ${problems.length} TF-slim weight file problem(s): ${problems.join("; ")}; ` +
        `copy the missing or damaged files again from the source named in PROVENANCE.md`,
    );
  }
  return out;
}

export type TfSlimOptions = Omit<MobileNetV2Options, "tfPadding">;

/**
 * A `MobileNetV2` with TF "SAME" padding whose features hold the TF-slim ImageNet weights in
 * `dir` (the .npy files and mapping.json), in eval mode. The classifier is initialised fresh for
 * `numClasses` (default 1000) from `seed`. Feed it `TFSLIM_NORMALIZE` ([-1, 1]) inputs.
 */
export async function loadTfSlimMobileNetV2(
  dir: string,
  opts: TfSlimOptions = {},
): Promise<MobileNetV2> {
  const mapping = await readTfSlimMapping(dir);
  const sd = tfSlimStateDict(await loadWeightsFile(dir, { rawKeys: true }), mapping, { dir });
  const model = mobilenetV2({ ...opts, tfPadding: true });
  try {
    // Strict: every features.* key of the model must come from the files (the head is skipped).
    loadStateDict(model, sd, { strict: true, skipHead: true, file: dir, normalize: false });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model.eval();
}

/** The 1280-d globally pooled features of `model` for x [N, H, W, 3]: [N, 1280]. */
export function pooledFeatures(model: MobileNetV2, x: Tensor): Tensor {
  return globalAvgPool(model.features.forward(x));
}
