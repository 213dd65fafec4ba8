/**
 * Weight import/export in PyTorch's layout. Models keep convolution weights HWIO
 * [KH, KW, Cin/groups, Cout] (depthwise ones [KH, KW, 1, C]); a PyTorch state_dict holds them
 * OIHW [Cout, Cin/groups, KH, KW] (depthwise [C, 1, KH, KW]). Both are the same permutation,
 * done on the GPU at this edge. Linear weights are [out, in] on both sides; BatchNorm's
 * `num_batches_tracked` is an i32 scalar here and int64 in PyTorch.
 */
import { gpu } from "../kernels/runtime/gpu.ts";
import { hwioToOihw, oihwToHwio } from "../kernels/ops/structure.ts";
import { fromBuffer, type Tensor, tensor } from "../core/tensor.ts";
import type { Module } from "../core/nn/module.ts";
import { Conv2d } from "../core/nn/conv2d.ts";
import {
  checkStrict,
  normalizeKeys,
  type StateDict,
  type StateTensor,
} from "../core/io/state_dict.ts";

export type TorchLayout = "hwio" | "plain";

export interface TorchEntry {
  /** The shape in PyTorch's layout (OIHW for conv weights). */
  shape: number[];
  layout: TorchLayout;
  dtype: "float32" | "int64";
  tensor: Tensor;
}

/**
 * Every state_dict entry of `model` in PyTorch's order (each module's parameters, then its
 * buffers, then its children), with PyTorch-layout shapes.
 */
export function torchEntries(model: Module): Map<string, TorchEntry> {
  const out = new Map<string, TorchEntry>();
  const walk = (m: Module, prefix: string) => {
    const own = (list: [string, Tensor][]) => list.filter(([n]) => !n.includes("."));
    for (const [n, t] of [...own(m.namedParameters()), ...own(m.namedBuffers())]) {
      const hwio = m instanceof Conv2d && n === "weight";
      const [a, b, c, d] = t.shape;
      out.set(prefix + n, {
        shape: hwio ? [d, c, a, b] : [...t.shape],
        layout: hwio ? "hwio" : "plain",
        dtype: t.dtype === "i32" ? "int64" : "float32",
        tensor: t,
      });
    }
    for (const [n, c] of m.children()) walk(c, `${prefix}${n}.`);
  };
  walk(model, "");
  return out;
}

/** key -> PyTorch-layout shape, in PyTorch's order. */
export function torchShapes(model: Module): Map<string, number[]> {
  return new Map([...torchEntries(model)].map(([k, e]) => [k, e.shape]));
}

/** The PyTorch-layout shape of one state_dict entry. */
export function torchShape(model: Module, name: string): number[] {
  const e = torchEntries(model).get(name);
  if (!e) throw new Error(`the model has no parameter or buffer '${name}'`);
  return e.shape;
}

export interface LoadStateDictOptions {
  /** Throw one error listing every missing, unexpected and mismatched key (default true). */
  strict?: boolean;
  /** Leave the head alone (ImageNet weights into a 7-class model). */
  skipHead?: boolean;
  /** The head's key prefix; defaults to the model's `headPrefix`. */
  headPrefix?: string;
  /** Strip "module." and rename old DenseNet keys first (default true). */
  normalize?: boolean;
  /** Named in errors. */
  file?: string;
}

export interface LoadReport {
  loaded: string[];
  /** Model keys the state_dict lacked (non-strict), plus absent `num_batches_tracked`. */
  missing: string[];
  unexpected: string[];
  mismatched: string[];
  skipped: string[];
}

function headPrefixOf(model: Module, opts: LoadStateDictOptions): string {
  const p = opts.headPrefix ?? (model as Module & { headPrefix?: string }).headPrefix;
  if (!p) throw new Error("skipHead needs a headPrefix (the model does not define one)");
  return p;
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** A model-layout tensor from a PyTorch-layout state_dict entry. */
function toModelTensor(s: StateTensor, e: TorchEntry, key: string): Tensor {
  if (e.dtype === "int64") {
    const v = s.data instanceof BigInt64Array ? Number(s.data[0]) : Number(s.data[0] ?? 0);
    return tensor(new Int32Array([v]), e.tensor.shape);
  }
  if (s.dtype !== "float32" || !(s.data instanceof Float32Array)) {
    throw new Error(`'${key}' holds ${s.dtype}, expected float32`);
  }
  if (e.layout === "plain") return tensor(s.data, e.tensor.shape);
  const raw = tensor(s.data, e.shape);
  const [O, I, KH, KW] = e.shape;
  const out = fromBuffer(oihwToHwio(gpu(), raw.buffer, { O, I, KH, KW }), [KH, KW, I, O]);
  raw.dispose();
  return out;
}

/**
 * Copies a PyTorch-layout state_dict into `model`, converting conv weights OIHW -> HWIO.
 * Strict mode (the default) checks every key and shape first and throws one error listing all
 * problems, loading nothing; non-strict mode loads what matches and reports the rest.
 */
export function loadStateDict(
  model: Module,
  stateDict: StateDict,
  opts: LoadStateDictOptions = {},
): LoadReport {
  const sd = opts.normalize === false ? stateDict : normalizeKeys(stateDict);
  const entries = torchEntries(model);
  const skip = opts.skipHead ? [headPrefixOf(model, opts)] : [];
  const isSkipped = (k: string) => skip.some((p) => k.startsWith(p));
  const report: LoadReport = {
    loaded: [],
    missing: [],
    unexpected: [],
    mismatched: [],
    skipped: [],
  };
  if (opts.strict !== false) {
    const expected = new Map([...entries].map(([k, e]) => [k, e.shape]));
    const { missingOptional } = checkStrict(sd, expected, { skipPrefixes: skip, file: opts.file });
    report.missing.push(...missingOptional);
  }
  for (const [k, e] of entries) {
    if (isSkipped(k)) {
      report.skipped.push(k);
      continue;
    }
    const s = sd.get(k);
    if (!s) {
      if (!report.missing.includes(k)) report.missing.push(k);
      continue;
    }
    if (!sameShape(s.shape, e.shape)) {
      report.mismatched.push(`${k} (file [${s.shape}], model [${e.shape}])`);
      continue;
    }
    model.setTensor(k, toModelTensor(s, e, k));
    report.loaded.push(k);
  }
  for (const k of sd.keys()) if (!entries.has(k) && !isSkipped(k)) report.unexpected.push(k);
  return report;
}

/** The model's weights as a PyTorch-layout StateDict (conv weights OIHW, counters int64). */
export async function exportStateDict(model: Module): Promise<StateDict> {
  const out: StateDict = new Map();
  for (const [k, e] of torchEntries(model)) {
    if (e.dtype === "int64") {
      const v = await e.tensor.read();
      out.set(k, { dtype: "int64", shape: e.shape, data: BigInt64Array.of(BigInt(v[0])) });
      continue;
    }
    let t = e.tensor;
    if (e.layout === "hwio") {
      const [KH, KW, I, O] = t.shape;
      t = fromBuffer(hwioToOihw(gpu(), t.buffer, { KH, KW, I, O }), e.shape);
    }
    const data = await t.read();
    if (t !== e.tensor) t.dispose();
    out.set(k, { dtype: "float32", shape: e.shape, data: data as Float32Array });
  }
  return out;
}
