/**
 * Sum over any set of axes (mean is a sum and a scale).
 *
 * Parallelisation: the reduced extent R is cut into chunks so that outputs x chunks gives
 * enough invocations to fill the device; each invocation sums one chunk serially for one
 * output (adjacent invocations take adjacent outputs, so NHWC per-channel sums read
 * contiguous memory), then a second launch sums the chunk partials. No workgroup barriers,
 * which keeps it fast on software adapters, and the summation order is fixed, so results are
 * reproducible run to run.
 *
 * Subgroup path (default where the adapter has subgroups and is not a software adapter, or
 * forced with `{ subgroups: true }`): the second pass is one launch of
 * `columnReduceSubgroupWgsl` over the [chunks, outputs] partials instead of repeated serial
 * passes. That kernel is shared with the global average pool / squeeze-excitation reduction
 * (pool.ts) and the bias gradient (conv2d.ts `sumRows`). It makes no assumption about the
 * subgroup size (it reads the `subgroup_size` builtin; partial subgroups are fine, since
 * `subgroupAdd` only sums active invocations) and uses no atomics, so it is deterministic on a
 * given device.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, grid1d, gridFor } from "../runtime/grid.ts";
import { coalesce, numel, offsetsWgsl, stridesOf } from "./shape.ts";

const WG = 256;
/** Most invocations per workgroup of the subgroup column reduction. */
const SG_WG = 256;
/** WebGPU guarantees subgroups of at least 4 invocations; sizes the per-subgroup array. */
const MIN_SUBGROUP = 4;
/** Target number of invocations in the first pass. */
const TARGET_THREADS = 1 << 16;
const MIN_CHUNK = 32;

export interface ReducePlan {
  outShape: number[];
  /** Kept dims (coalesced) and the input strides for them. */
  keptShape: number[];
  keptStrides: number[];
  /** Reduced dims (coalesced) and the input strides for them. */
  redShape: number[];
  redStrides: number[];
  outputs: number;
  reduced: number;
}

/** Output shape of a sum over `axes` (keepDims keeps them as size 1). */
export function reduceShape(shape: number[], axes: number[], keepDims: boolean): number[] {
  const set = new Set(axes.map((a) => (a < 0 ? a + shape.length : a)));
  for (const a of set) {
    if (a < 0 || a >= shape.length) throw new Error(`axis ${a} out of range for [${shape}]`);
  }
  return keepDims ? shape.map((d, i) => (set.has(i) ? 1 : d)) : shape.filter((_, i) => !set.has(i));
}

export function planReduce(shape: number[], axes: number[]): ReducePlan {
  const set = new Set(axes.map((a) => (a < 0 ? a + shape.length : a)));
  const strides = stridesOf(shape);
  const kept = coalesce(
    shape.filter((_, i) => !set.has(i)),
    [strides.filter((_, i) => !set.has(i))],
  );
  const red = coalesce(
    shape.filter((_, i) => set.has(i)),
    [strides.filter((_, i) => set.has(i))],
  );
  return {
    outShape: reduceShape(shape, axes, false),
    keptShape: kept.shape,
    keptStrides: kept.strides[0],
    redShape: red.shape,
    redStrides: red.strides[0],
    outputs: numel(kept.shape),
    reduced: numel(red.shape),
  };
}

/** How `sum` cuts the reduced extent: `chunks` partials per output of `chunk` elements each. */
export function chunking(p: ReducePlan): { chunks: number; chunk: number } {
  if (p.reduced <= MIN_CHUNK || p.outputs >= TARGET_THREADS) {
    return { chunks: 1, chunk: p.reduced };
  }
  const wanted = Math.ceil(TARGET_THREADS / p.outputs);
  const chunk = Math.max(MIN_CHUNK, Math.ceil(p.reduced / wanted));
  return { chunks: Math.ceil(p.reduced / chunk), chunk };
}

/** First pass: partial[c * outputs + o] = sum of chunk c of output o's reduced elements. */
export function sumPartialWgsl(
  p: ReducePlan,
  chunks: number,
  chunk: number,
  scale: number,
): string {
  const total = p.outputs * chunks;
  const grid = gridFor(total, WG);
  const scaleExpr = scale === 1 ? "acc" : `acc * ${f32lit(scale)}`;
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let t = ${grid.index};
  if (t >= ${total}u) { return; }
  let o = t % ${p.outputs}u;
  let c = t / ${p.outputs}u;
  ${offsetsWgsl("o", p.keptShape, [p.keptStrides], ["base"])}
  let r0 = c * ${chunk}u;
  let r1 = min(r0 + ${chunk}u, ${p.reduced}u);
  var acc = 0.0;
  for (var r = r0; r < r1; r++) {
    ${offsetsWgsl("r", p.redShape, [p.redStrides], ["off"]).replaceAll("\n", "\n  ")}
    acc += x[base + off];
  }
  y[t] = ${scaleExpr};
}`;
}

/**
 * Whether a reduction takes its subgroup path: `force` when given (true throws on a device
 * without subgroups), else on adapters with subgroups that are not software adapters.
 */
export function useSubgroups(g: Gpu, force?: boolean): boolean {
  if (force && !g.info.subgroups) {
    throw new Error("the subgroup reduction was requested but the device has no subgroups");
  }
  return force ?? (g.info.subgroups && !g.info.isFallback);
}

/** A column reduction: out[n * cols + c] = finish(sum over r < rows of term(i)). */
export interface ColumnReduceSpec {
  /** Independent [rows, cols] blocks, contiguous one after the other. */
  batches: number;
  rows: number;
  cols: number;
  /** Binding declarations. */
  decls: string;
  /** The summed value for element i = (n * rows + r) * cols + c (a u32 expression). */
  term: (i: string) => string;
  /** The statement storing the sum `acc` for output index `out`. */
  finish: (acc: string, out: string) => string;
  /**
   * Invocations per workgroup; any size from 1 to 256 works. Default: 8 columns (fewer when
   * there are fewer) x enough row lanes that each has about 4 rows, at most 256 and at least
   * 64 invocations.
   */
  workgroupSize?: number;
}

/** Columns a workgroup of the column reduction owns (8 adjacent floats: one 32-byte read). */
function columnBlock(cols: number, size: number): number {
  let rc = 1;
  while (rc < 8 && rc * 2 <= cols && rc * 2 <= size) rc *= 2;
  return rc;
}

function defaultColumnWorkgroup(rows: number, cols: number): number {
  const rc = columnBlock(cols, SG_WG);
  let rl = 1;
  while (rc * rl * 2 <= SG_WG && rl * 4 < rows) rl *= 2;
  return Math.max(64, rc * rl);
}

/**
 * WGSL of a column reduction with subgroup adds. A workgroup owns RC adjacent columns of one
 * block (RC up to 8, so adjacent invocations read adjacent floats) and its other invocations
 * are lanes that stride over the rows. Within a subgroup the lanes of a column are combined
 * by a `subgroupShuffleXor` butterfly when every subgroup is full and a multiple of RC wide
 * (the usual case: sizes are powers of two and the workgroup a multiple of them), else by one
 * `subgroupAdd` per column with the other columns masked to 0 (partial or narrow subgroups).
 * The subgroup totals go to a small workgroup array (slot = local index / subgroup_size,
 * subgroups being consecutive local indices), and one invocation per column adds those slots
 * in order after a single barrier. Works for any subgroup size and any workgroup size.
 */
export function columnReduceSubgroupWgsl(
  spec: ColumnReduceSpec,
): { code: string; workgroups: [number, number, number] } {
  const { batches: N, rows, cols } = spec;
  const T = spec.workgroupSize ?? defaultColumnWorkgroup(rows, cols);
  if (!(Number.isInteger(T) && T >= 1 && T <= 256)) {
    throw new Error(`column reduction: bad workgroup size ${T}`);
  }
  if (!(N >= 1 && rows >= 1 && cols >= 1)) {
    throw new Error(`column reduction: empty problem ${N}x${rows}x${cols}`);
  }
  const RC = columnBlock(cols, T);
  const RL = Math.floor(T / RC);
  const CB = Math.ceil(cols / RC);
  const grid = grid1d(N * CB, T);
  const slots = Math.ceil(T / MIN_SUBGROUP) * RC;
  // Full power-of-two subgroups that hold whole rows of the RC columns (the usual case):
  // a butterfly over the lanes of the same column. Otherwise (partial subgroups, or subgroups
  // narrower than RC): one masked subgroupAdd per column.
  const combine = RC === 1
    ? `let s = subgroupAdd(acc);
  if (sid == 0u) { part[li / sgs] = s; }`
    : `let slot = li / sgs;
  if (sgs % ${RC}u == 0u && ${T}u % sgs == 0u) {
    var v = acc;
    for (var o = ${RC}u; o < sgs; o = o << 1u) { v = v + subgroupShuffleXor(v, o); }
    if (sid < ${RC}u) { part[slot * ${RC}u + sid] = v; }
  } else {
    for (var k = 0u; k < ${RC}u; k = k + 1u) {
      let s = subgroupAdd(select(0.0, acc, col == k));
      if (sid == 0u) { part[slot * ${RC}u + k] = s; }
    }
  }`;
  const code = `${spec.decls}
var<workgroup> part: array<f32, ${slots}>;
@compute @workgroup_size(${T})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_size) sgs: u32,
  @builtin(subgroup_invocation_id) sid: u32,
) {
  let gi = ${grid.group};
  let n = gi / ${CB}u;
  let col = li % ${RC}u;
  let lane = li / ${RC}u;
  let c = (gi % ${CB}u) * ${RC}u + col;
  let live = n < ${N}u && c < ${cols}u;
  var acc = 0.0;
  if (live && lane < ${RL}u) {
    for (var r = lane; r < ${rows}u; r = r + ${RL}u) {
      let i = (n * ${rows}u + r) * ${cols}u + c;
      acc = acc + ${spec.term("i")};
    }
  }
  ${combine}
  workgroupBarrier();
  if (live && lane == 0u) {
    var total = 0.0;
    let nsg = (${T}u + sgs - 1u) / sgs;
    for (var j = 0u; j < nsg; j = j + 1u) { total = total + part[j * ${RC}u + col]; }
    let t = n * ${cols}u + c;
    ${spec.finish("total", "t")}
  }
}`;
  return { code, workgroups: grid.workgroups };
}

export interface SumOptions {
  /** Force (true) or disable (false) the subgroup second pass; default `useSubgroups`. */
  subgroups?: boolean;
}

/** Sum of `x` (shape) over `axes`, times `scale`; returns a buffer of the kept dims. */
export function sum(
  g: Gpu,
  x: GPUBuffer,
  shape: number[],
  axes: number[],
  scale = 1,
  opts: SumOptions = {},
): GPUBuffer {
  const p = planReduce(shape, axes);
  const { chunks, chunk } = chunking(p);
  const first = g.pool.acquire(p.outputs * chunks * 4);
  g.run(
    sumPartialWgsl(p, chunks, chunk, chunks === 1 ? scale : 1),
    [x, first],
    gridFor(p.outputs * chunks, WG).workgroups,
  );
  if (chunks === 1) return first;
  // Partials are laid out [chunks, outputs]: reduce axis 0.
  let out: GPUBuffer;
  // A second pass over at most MIN_CHUNK partials is one serial launch already.
  if (chunks > MIN_CHUNK && useSubgroups(g, opts.subgroups)) {
    out = g.pool.acquire(p.outputs * 4);
    const scaled = scale === 1 ? "" : ` * ${f32lit(scale)}`;
    const { code, workgroups } = columnReduceSubgroupWgsl({
      batches: 1,
      rows: chunks,
      cols: p.outputs,
      decls: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;`,
      term: (i) => `x[${i}]`,
      finish: (acc, t) => `y[${t}] = ${acc}${scaled};`,
    });
    g.run(code, [first, out], workgroups);
  } else {
    out = sum(g, first, [chunks, p.outputs], [0], scale, opts);
  }
  g.pool.release(first);
  return out;
}

export function sumCpu(x: Float64Array, shape: number[], axes: number[], scale = 1): Float64Array {
  const set = new Set(axes.map((a) => (a < 0 ? a + shape.length : a)));
  const outShape = shape.filter((_, i) => !set.has(i));
  const outStrides = stridesOf(outShape);
  const out = new Float64Array(numel(outShape));
  const coord = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < x.length; i++) {
    let o = 0, k = 0;
    for (let d = 0; d < shape.length; d++) if (!set.has(d)) o += coord[d] * outStrides[k++];
    out[o] += x[i];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++coord[d] < shape[d]) break;
      coord[d] = 0;
    }
  }
  return out.map((v) => v * scale);
}
