/**
 * Log-softmax over the last axis and the fused softmax cross-entropy loss.
 *
 * Rows are independent and the class count is small (7 for HAM10000, 1000 for ImageNet), so
 * one invocation handles one row with a max / sum-exp / write pass; no barriers. The loss is
 * a single scalar: its forward runs one workgroup that strides over rows and reduces in
 * shared memory, and writes [loss, weight sum] so the backward can reuse the denominator.
 *
 * Subgroup variants (default where the adapter has subgroups and is not a software adapter;
 * `subgroups: true` forces them): the loss combines its invocations with `subgroupAdd` and a
 * small per-subgroup array instead of a barrier tree, and log-softmax (forward and backward)
 * gives each row a workgroup whose invocations stride over the classes and combine with
 * `subgroupMax` / `subgroupAdd` (chosen by default from 64 classes up: ImageNet's 1000, not
 * HAM10000's 7). Neither assumes a subgroup size (the `subgroup_size` builtin sizes the
 * per-subgroup step; partial subgroups are fine) and neither uses atomics, so results are
 * deterministic on a given device.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, grid1d, gridFor } from "../runtime/grid.ts";
import { useSubgroups } from "./reduce.ts";

const WG = 64;
/** WebGPU guarantees subgroups of at least 4 invocations; sizes the per-subgroup arrays. */
const MIN_SUBGROUP = 4;
/** Invocations a row in the subgroup log-softmax, and the class count that picks it. */
const ROW_WG = 64, ROW_MIN_COLS = 64;

export interface SoftmaxOptions {
  /** Force (true) or disable (false) the workgroup-per-row subgroup kernels. */
  subgroups?: boolean;
  /** Invocations per row of the subgroup kernels (default 64; any size from 1 to 256). */
  workgroupSize?: number;
}

/**
 * WGSL of a function `name`(v) returning the workgroup-wide sum or max of v to every
 * invocation: one subgroup op, per-subgroup results in `arr`, one barrier, then each
 * invocation folds the slots in order. Needs `li`, `sgs` and `sid` passed in, and must be
 * called in uniform control flow.
 */
function workgroupCombine(name: string, op: "add" | "max", T: number): string {
  const arr = `${name}_part`;
  const sg = op === "add" ? "subgroupAdd" : "subgroupMax";
  const fold = op === "add" ? "r = r + ARR[j];" : "r = max(r, ARR[j]);";
  return `var<workgroup> ${arr}: array<f32, ${Math.ceil(T / MIN_SUBGROUP)}>;
fn ${name}(v: f32, li: u32, sgs: u32, sid: u32) -> f32 {
  let s = ${sg}(v);
  if (sid == 0u) { ${arr}[li / sgs] = s; }
  workgroupBarrier();
  var r = ${arr}[0];
  for (var j = 1u; j < (${T}u + sgs - 1u) / sgs; j = j + 1u) { ${fold.replace("ARR", arr)} }
  return r;
}`;
}

function rowWorkgroupSize(cols: number, opts: SoftmaxOptions): number {
  const T = opts.workgroupSize ?? ROW_WG;
  if (!(Number.isInteger(T) && T >= 1 && T <= 256)) {
    throw new Error(`softmax: bad workgroup size ${T}`);
  }
  return Math.min(T, Math.max(cols, 1));
}

function rowEntry(T: number): string {
  return `@compute @workgroup_size(${T})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_size) sgs: u32,
  @builtin(subgroup_invocation_id) sid: u32,
)`;
}

/** Log-softmax with one workgroup of T invocations a row (subgroup max and sum). */
export function logSoftmaxSubgroupWgsl(rows: number, cols: number, T: number): string {
  const grid = grid1d(rows, T);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${workgroupCombine("wgMax", "max", T)}
${workgroupCombine("wgSum", "add", T)}
${rowEntry(T)} {
  let r = ${grid.group};
  let n = select(0u, ${cols}u, r < ${rows}u);
  let base = r * ${cols}u;
  var m = ${f32lit(-Infinity)};
  for (var c = li; c < n; c = c + ${T}u) { m = max(m, x[base + c]); }
  m = wgMax(m, li, sgs, sid);
  var s = 0.0;
  for (var c = li; c < n; c = c + ${T}u) { s = s + exp(x[base + c] - m); }
  let lse = m + log(wgSum(s, li, sgs, sid));
  for (var c = li; c < n; c = c + ${T}u) { y[base + c] = x[base + c] - lse; }
}`;
}

/** Log-softmax backward with one workgroup of T invocations a row (subgroup sum). */
export function logSoftmaxBackwardSubgroupWgsl(rows: number, cols: number, T: number): string {
  const grid = grid1d(rows, T);
  return `@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${workgroupCombine("wgSum", "add", T)}
${rowEntry(T)} {
  let r = ${grid.group};
  let n = select(0u, ${cols}u, r < ${rows}u);
  let base = r * ${cols}u;
  var s = 0.0;
  for (var c = li; c < n; c = c + ${T}u) { s = s + dy[base + c]; }
  s = wgSum(s, li, sgs, sid);
  for (var c = li; c < n; c = c + ${T}u) { dx[base + c] = dy[base + c] - exp(y[base + c]) * s; }
}`;
}

export function logSoftmaxWgsl(rows: number, cols: number): string {
  const grid = gridFor(rows, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let r = ${grid.index};
  if (r >= ${rows}u) { return; }
  let base = r * ${cols}u;
  var m = x[base];
  for (var c = 1u; c < ${cols}u; c++) { m = max(m, x[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < ${cols}u; c++) { s += exp(x[base + c] - m); }
  let lse = m + log(s);
  for (var c = 0u; c < ${cols}u; c++) { y[base + c] = x[base + c] - lse; }
}`;
}

/** dx = dy - softmax(x) * sum(dy), from the forward output y = log_softmax(x). */
export function logSoftmaxBackwardWgsl(rows: number, cols: number): string {
  const grid = gridFor(rows, WG);
  return `@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${entry1d(WG)} {
  let r = ${grid.index};
  if (r >= ${rows}u) { return; }
  let base = r * ${cols}u;
  var s = 0.0;
  for (var c = 0u; c < ${cols}u; c++) { s += dy[base + c]; }
  for (var c = 0u; c < ${cols}u; c++) { dx[base + c] = dy[base + c] - exp(y[base + c]) * s; }
}`;
}

/** Whether log-softmax takes the workgroup-per-row subgroup kernels. */
function rowSubgroups(g: Gpu, cols: number, opts: SoftmaxOptions): boolean {
  if (opts.subgroups !== undefined) return useSubgroups(g, opts.subgroups);
  return cols >= ROW_MIN_COLS && useSubgroups(g);
}

export function logSoftmax(
  g: Gpu,
  x: GPUBuffer,
  rows: number,
  cols: number,
  opts: SoftmaxOptions = {},
): GPUBuffer {
  const y = g.pool.acquire(rows * cols * 4);
  if (rowSubgroups(g, cols, opts)) {
    const T = rowWorkgroupSize(cols, opts);
    g.run(logSoftmaxSubgroupWgsl(rows, cols, T), [x, y], grid1d(rows, T).workgroups);
  } else {
    g.run(logSoftmaxWgsl(rows, cols), [x, y], gridFor(rows, WG).workgroups);
  }
  return y;
}

export function logSoftmaxBackward(
  g: Gpu,
  y: GPUBuffer,
  dy: GPUBuffer,
  rows: number,
  cols: number,
  opts: SoftmaxOptions = {},
): GPUBuffer {
  const dx = g.pool.acquire(rows * cols * 4);
  if (rowSubgroups(g, cols, opts)) {
    const T = rowWorkgroupSize(cols, opts);
    g.run(
      logSoftmaxBackwardSubgroupWgsl(rows, cols, T),
      [y, dy, dx],
      grid1d(rows, T).workgroups,
    );
  } else {
    g.run(logSoftmaxBackwardWgsl(rows, cols), [y, dy, dx], gridFor(rows, WG).workgroups);
  }
  return dx;
}

export function logSoftmaxCpu(x: Float64Array, rows: number, cols: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    for (let c = 0; c < cols; c++) y[r * cols + c] = row[c] - lse;
  }
  return y;
}

export function logSoftmaxBackwardCpu(
  x: Float64Array,
  dy: Float64Array,
  rows: number,
  cols: number,
): Float64Array {
  const y = logSoftmaxCpu(x, rows, cols);
  const dx = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += dy[r * cols + c];
    for (let c = 0; c < cols; c++) {
      dx[r * cols + c] = dy[r * cols + c] - Math.exp(y[r * cols + c]) * s;
    }
  }
  return dx;
}

/**
 * PyTorch's F.cross_entropy(logits, labels, weight, label_smoothing, reduction="mean"):
 * loss = sum_i [(1-eps) w[y_i] (-logp[i,y_i]) + eps/C sum_c w[c] (-logp[i,c])] / sum_i w[y_i]
 * (w = 1 without class weights, so the denominator is the batch size).
 */
export interface CrossEntropyParams {
  rows: number;
  classes: number;
  labelSmoothing?: number;
  /** Whether a class-weight buffer is bound. */
  weighted?: boolean;
  /**
   * Force (true) or disable (false) the subgroup loss reduction; default: on adapters with
   * subgroups that are not software adapters (`crossEntropy` resolves it before codegen).
   */
  subgroups?: boolean;
  /** Invocations of the single loss workgroup (default 256; any size from 1 to 256). */
  workgroupSize?: number;
}

function ceCommon(p: CrossEntropyParams): string {
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
${p.weighted ? "@group(0) @binding(2) var<storage, read> w: array<f32>;" : ""}
fn weight(c: u32) -> f32 { return ${p.weighted ? "w[c]" : "1.0"}; }
fn rowLse(base: u32) -> f32 {
  var m = x[base];
  for (var c = 1u; c < ${p.classes}u; c++) { m = max(m, x[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < ${p.classes}u; c++) { s += exp(x[base + c] - m); }
  return m + log(s);
}`;
}

export function crossEntropyWgsl(p: CrossEntropyParams): string {
  const eps = p.labelSmoothing ?? 0;
  const out = p.weighted ? 3 : 2;
  const T = p.workgroupSize ?? 256;
  if (!(Number.isInteger(T) && T >= 1 && T <= 256)) {
    throw new Error(`cross-entropy: bad workgroup size ${T}`);
  }
  const body = `var loss = 0.0;
  var wsum = 0.0;
  for (var r = li; r < ${p.rows}u; r += ${T}u) {
    let base = r * ${p.classes}u;
    let lse = rowLse(base);
    let t = u32(labels[r]);
    let wt = weight(t);
    var sm = 0.0;
    ${
    eps > 0
      ? `for (var c = 0u; c < ${p.classes}u; c++) { sm += weight(c) * (lse - x[base + c]); }`
      : ""
  }
    loss += ${f32lit(1 - eps)} * wt * (lse - x[base + t]) + ${f32lit(eps / p.classes)} * sm;
    wsum += wt;
  }`;
  if (p.subgroups) {
    const slots = Math.ceil(T / MIN_SUBGROUP);
    return `${ceCommon(p)}
@group(0) @binding(${out}) var<storage, read_write> y: array<f32>;
var<workgroup> sl: array<f32, ${slots}>;
var<workgroup> sw: array<f32, ${slots}>;
@compute @workgroup_size(${T})
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_size) sgs: u32,
  @builtin(subgroup_invocation_id) sid: u32,
) {
  ${body}
  let l = subgroupAdd(loss);
  let w = subgroupAdd(wsum);
  if (sid == 0u) {
    sl[li / sgs] = l;
    sw[li / sgs] = w;
  }
  workgroupBarrier();
  if (li == 0u) {
    var lt = 0.0;
    var wt = 0.0;
    for (var j = 0u; j < (${T}u + sgs - 1u) / sgs; j++) {
      lt += sl[j];
      wt += sw[j];
    }
    y[0] = lt / wt;
    y[1] = wt;
  }
}`;
  }
  let P = 1;
  while (P < T) P *= 2;
  return `${ceCommon(p)}
@group(0) @binding(${out}) var<storage, read_write> y: array<f32>;
var<workgroup> sl: array<f32, ${T}>;
var<workgroup> sw: array<f32, ${T}>;
@compute @workgroup_size(${T})
fn main(@builtin(local_invocation_index) li: u32) {
  ${body}
  sl[li] = loss;
  sw[li] = wsum;
  workgroupBarrier();
  for (var s = ${P >> 1}u; s > 0u; s >>= 1u) {
    if (li < s && li + s < ${T}u) {
      sl[li] += sl[li + s];
      sw[li] += sw[li + s];
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    y[0] = sl[0] / sw[0];
    y[1] = sw[0];
  }
}`;
}

/** dlogits = dL * [(1-eps) w[y] (p - onehot) + eps/C (W p - w)] / wsum, with W = sum(w). */
export function crossEntropyBackwardWgsl(p: CrossEntropyParams): string {
  const eps = p.labelSmoothing ?? 0;
  const b = p.weighted ? 3 : 2;
  const grid = gridFor(p.rows, WG);
  return `${ceCommon(p)}
@group(0) @binding(${b}) var<storage, read> fwd: array<f32>;
@group(0) @binding(${b + 1}) var<storage, read> dl: array<f32>;
@group(0) @binding(${b + 2}) var<storage, read_write> dx: array<f32>;
${entry1d(WG)} {
  let r = ${grid.index};
  if (r >= ${p.rows}u) { return; }
  let base = r * ${p.classes}u;
  let lse = rowLse(base);
  let t = u32(labels[r]);
  let scale = dl[0] / fwd[1];
  var wall = 0.0;
  for (var c = 0u; c < ${p.classes}u; c++) { wall += weight(c); }
  let wt = weight(t);
  for (var c = 0u; c < ${p.classes}u; c++) {
    let pr = exp(x[base + c] - lse);
    let hard = wt * (pr - select(0.0, 1.0, c == t));
    let soft = wall * pr - weight(c);
    dx[base + c] = scale * (${f32lit(1 - eps)} * hard + ${f32lit(eps / p.classes)} * soft);
  }
}`;
}

/** Returns a buffer holding [mean loss, sum of target weights]. */
export function crossEntropy(
  g: Gpu,
  logits: GPUBuffer,
  labels: GPUBuffer,
  weights: GPUBuffer | null,
  p: CrossEntropyParams,
): GPUBuffer {
  const q = { ...p, weighted: weights !== null, subgroups: useSubgroups(g, p.subgroups) };
  const y = g.pool.acquire(8);
  const inputs = weights ? [logits, labels, weights] : [logits, labels];
  g.run(crossEntropyWgsl(q), [...inputs, y], [1, 1, 1]);
  return y;
}

export function crossEntropyBackward(
  g: Gpu,
  logits: GPUBuffer,
  labels: GPUBuffer,
  weights: GPUBuffer | null,
  forward: GPUBuffer,
  dloss: GPUBuffer,
  p: CrossEntropyParams,
): GPUBuffer {
  const q = { ...p, weighted: weights !== null };
  const dx = g.pool.acquire(p.rows * p.classes * 4);
  const inputs = weights ? [logits, labels, weights] : [logits, labels];
  g.run(
    crossEntropyBackwardWgsl(q),
    [...inputs, forward, dloss, dx],
    gridFor(p.rows, WG).workgroups,
  );
  return dx;
}

export function crossEntropyCpu(
  x: Float64Array,
  labels: Int32Array,
  weights: Float64Array | null,
  p: CrossEntropyParams,
): number {
  const eps = p.labelSmoothing ?? 0, C = p.classes;
  const logp = logSoftmaxCpu(x, p.rows, C);
  const w = (c: number) => (weights ? weights[c] : 1);
  let loss = 0, wsum = 0;
  for (let r = 0; r < p.rows; r++) {
    const t = labels[r];
    let smooth = 0;
    for (let c = 0; c < C; c++) smooth += w(c) * -logp[r * C + c];
    loss += (1 - eps) * w(t) * -logp[r * C + t] + (eps / C) * smooth;
    wsum += w(t);
  }
  return loss / wsum;
}

export function crossEntropyBackwardCpu(
  x: Float64Array,
  labels: Int32Array,
  weights: Float64Array | null,
  dloss: number,
  p: CrossEntropyParams,
): Float64Array {
  const eps = p.labelSmoothing ?? 0, C = p.classes;
  const logp = logSoftmaxCpu(x, p.rows, C);
  const w = (c: number) => (weights ? weights[c] : 1);
  let wsum = 0, wall = 0;
  for (let r = 0; r < p.rows; r++) wsum += w(labels[r]);
  for (let c = 0; c < C; c++) wall += w(c);
  const dx = new Float64Array(x.length);
  for (let r = 0; r < p.rows; r++) {
    const t = labels[r];
    for (let c = 0; c < C; c++) {
      const pr = Math.exp(logp[r * C + c]);
      const hard = w(t) * (pr - (c === t ? 1 : 0));
      const soft = wall * pr - w(c);
      dx[r * C + c] = (dloss / wsum) * ((1 - eps) * hard + (eps / C) * soft);
    }
  }
  return dx;
}
