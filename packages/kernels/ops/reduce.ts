/**
 * Sum over any set of axes (mean is a sum and a scale).
 *
 * Parallelisation: the reduced extent R is cut into chunks so that outputs x chunks gives
 * enough invocations to fill the device; each invocation sums one chunk serially for one
 * output (adjacent invocations take adjacent outputs, so NHWC per-channel sums read
 * contiguous memory), then a second launch sums the chunk partials. No workgroup barriers,
 * which keeps it fast on software adapters, and the summation order is fixed, so results are
 * reproducible run to run.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, gridFor } from "../runtime/grid.ts";
import { coalesce, numel, offsetsWgsl, stridesOf } from "./shape.ts";

const WG = 256;
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

function chunking(p: ReducePlan): { chunks: number; chunk: number } {
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

/** Sum of `x` (shape) over `axes`, times `scale`; returns a buffer of the kept dims. */
export function sum(g: Gpu, x: GPUBuffer, shape: number[], axes: number[], scale = 1): GPUBuffer {
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
  const out = sum(g, first, [chunks, p.outputs], [0], scale);
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
