/**
 * Structure ops on NHWC data: channel concat / slice (DenseNet), the per-(n, c) channel scale of
 * squeeze-excitation, and layout permutes for the PyTorch import edge (NCHW <-> NHWC activations,
 * OIHW -> HWIO conv weights, [C,1,KH,KW] -> [KH,KW,C] depthwise weights).
 *
 * All are one thread per output element, with the output's fastest axis on adjacent threads so
 * writes are coalesced; concat and slice also read contiguous channel runs.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, gridFor } from "../runtime/grid.ts";
import { hwReduceMode, hwReduceWgsl } from "./pool.ts";

const WG = 64;

export interface ConcatIntoParams {
  /** Rows sharing the channel axis: N*H*W. */
  rows: number;
  /** Channels of the output. */
  outC: number;
  /** Channels of this input. */
  inC: number;
  /** First output channel this input fills. */
  offset: number;
}

export interface SliceChannelsParams {
  rows: number;
  /** Channels of the input. */
  inC: number;
  /** Channels of the slice (the output). */
  outC: number;
  /** First input channel of the slice. */
  offset: number;
}

export interface ChannelScaleParams {
  N: number;
  H: number;
  W: number;
  C: number;
  /** Force the workgroup-shared ds reduction (default: on real GPUs, off on llvmpipe). */
  shared?: boolean;
  /** Force (or forbid) the subgroup ds reduction (default: real GPUs with subgroups). */
  subgroups?: boolean;
}

export type Dims4 = readonly [number, number, number, number];

// ---------------------------------------------------------------------------------------------
// Concat / slice

/** Copies input [rows, inC] into channels offset..offset+inC of out [rows, outC]. */
export function concatIntoWgsl(p: ConcatIntoParams): string {
  const { rows, outC, inC, offset } = p;
  if (offset < 0 || offset + inC > outC) throw new Error(`concat: bad slice ${JSON.stringify(p)}`);
  const total = rows * inC;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  y[(i / ${inC}u) * ${outC}u + ${offset}u + i % ${inC}u] = x[i];
}`;
}

/** Writes `input` into its channel slice of the preallocated `out` (one dispatch). */
export function concatInto(g: Gpu, out: GPUBuffer, input: GPUBuffer, p: ConcatIntoParams): void {
  g.run(concatIntoWgsl(p), [input, out], gridFor(p.rows * p.inC, WG).workgroups);
}

/** Concatenates NHWC inputs along C: channels[k] is the channel count of inputs[k]. */
export function concat(
  g: Gpu,
  inputs: readonly GPUBuffer[],
  p: { rows: number; channels: readonly number[] },
): GPUBuffer {
  if (inputs.length !== p.channels.length) throw new Error("concat: one channel count per input");
  const outC = p.channels.reduce((a, b) => a + b, 0);
  const out = g.pool.acquire(p.rows * outC * 4);
  let offset = 0;
  inputs.forEach((input, k) => {
    concatInto(g, out, input, { rows: p.rows, outC, inC: p.channels[k], offset });
    offset += p.channels[k];
  });
  return out;
}

/** Channels offset..offset+outC of x [rows, inC] as a new [rows, outC] buffer. */
export function sliceChannelsWgsl(p: SliceChannelsParams): string {
  const { rows, inC, outC, offset } = p;
  if (offset < 0 || offset + outC > inC) throw new Error(`slice: bad slice ${JSON.stringify(p)}`);
  const total = rows * outC;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  y[i] = x[(i / ${outC}u) * ${inC}u + ${offset}u + i % ${outC}u];
}`;
}

/** A channel slice of x (also the backward of concat for one input). */
export function sliceChannels(g: Gpu, x: GPUBuffer, p: SliceChannelsParams): GPUBuffer {
  const y = g.pool.acquire(p.rows * p.outC * 4);
  g.run(sliceChannelsWgsl(p), [x, y], gridFor(p.rows * p.outC, WG).workgroups);
  return y;
}

/** Splits x along C into pieces of `channels` (the backward of `concat`). */
export function splitChannels(
  g: Gpu,
  x: GPUBuffer,
  p: { rows: number; channels: readonly number[] },
): GPUBuffer[] {
  const inC = p.channels.reduce((a, b) => a + b, 0);
  let offset = 0;
  return p.channels.map((outC) => {
    const y = sliceChannels(g, x, { rows: p.rows, inC, outC, offset });
    offset += outC;
    return y;
  });
}

// ---------------------------------------------------------------------------------------------
// Channel scale (squeeze-excitation)

/** y[n,h,w,c] = x[n,h,w,c] * s[n,c], one thread per element. */
export function channelScaleWgsl(p: ChannelScaleParams): string {
  const { N, H, W, C } = p;
  const total = N * H * W * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  y[i] = x[i] * s[(i / ${H * W * C}u) * ${C}u + i % ${C}u];
}`;
}

/** Squeeze-excitation scale: x [N,H,W,C] times s [N,C] broadcast over H and W. */
export function channelScale(g: Gpu, x: GPUBuffer, s: GPUBuffer, p: ChannelScaleParams): GPUBuffer {
  const total = p.N * p.H * p.W * p.C;
  const y = g.pool.acquire(total * 4);
  g.run(channelScaleWgsl(p), [x, s, y], gridFor(total, WG).workgroups);
  return y;
}

/**
 * Backward of `channelScale`: dx = dy * s (the forward kernel applied to dy) and
 * ds[n,c] = sum over h,w of dy * x (one launch; reduction over HW per (n, c), adjacent threads
 * on adjacent c; workgroup-shared on real GPUs, see `hwReduceWgsl`).
 */
export function channelScaleBackward(
  g: Gpu,
  x: GPUBuffer,
  s: GPUBuffer,
  dy: GPUBuffer,
  p: ChannelScaleParams,
): { dx: GPUBuffer; ds: GPUBuffer } {
  const dx = channelScale(g, dy, s, p);
  const ds = g.pool.acquire(p.N * p.C * 4);
  const { code, workgroups } = hwReduceWgsl(
    p.N,
    p.H * p.W,
    p.C,
    `@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ds: array<f32>;`,
    (i) => `dy[${i}] * x[${i}]`,
    (acc, t) => `ds[${t}] = ${acc};`,
    hwReduceMode(g, p),
  );
  g.run(code, [dy, x, ds], workgroups);
  return { dx, ds };
}

// ---------------------------------------------------------------------------------------------
// Layout permutes

/** Output dims of permuting `dims` by `perm` (output axis k is input axis perm[k]). */
export function permutedDims(dims: Dims4, perm: Dims4): Dims4 {
  const sorted = [...perm].sort();
  if (sorted.join() !== "0,1,2,3") throw new Error(`permute: ${perm} is not a permutation`);
  return [dims[perm[0]], dims[perm[1]], dims[perm[2]], dims[perm[3]]];
}

/** A 4-D permute, one thread per output element (writes coalesced, reads gathered). */
export function permute4Wgsl(dims: Dims4, perm: Dims4): string {
  const od = permutedDims(dims, perm);
  const inStride = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1];
  const total = dims[0] * dims[1] * dims[2] * dims[3];
  const grid = gridFor(total, WG);
  const terms = [0, 1, 2, 3].map((k) => {
    const below = od.slice(k + 1).reduce((a, b) => a * b, 1);
    return `((i / ${below}u) % ${od[k]}u) * ${inStride[perm[k]]}u`;
  });
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  y[i] = x[${terms.join(" + ")}];
}`;
}

/** Permutes a 4-D tensor of shape `dims`: output axis k is input axis perm[k]. */
export function permute4(g: Gpu, x: GPUBuffer, dims: Dims4, perm: Dims4): GPUBuffer {
  const total = dims[0] * dims[1] * dims[2] * dims[3];
  const y = g.pool.acquire(total * 4);
  g.run(permute4Wgsl(dims, perm), [x, y], gridFor(total, WG).workgroups);
  return y;
}

export const NCHW_TO_NHWC: Dims4 = [0, 2, 3, 1];
export const NHWC_TO_NCHW: Dims4 = [0, 3, 1, 2];
/** OIHW (PyTorch conv weight, I = Cin/groups) -> HWIO. Also [C,1,KH,KW] -> [KH,KW,1,C]. */
export const OIHW_TO_HWIO: Dims4 = [2, 3, 1, 0];
export const HWIO_TO_OIHW: Dims4 = [3, 2, 0, 1];

/** Activations NCHW -> NHWC. */
export function nchwToNhwc(
  g: Gpu,
  x: GPUBuffer,
  p: { N: number; C: number; H: number; W: number },
): GPUBuffer {
  return permute4(g, x, [p.N, p.C, p.H, p.W], NCHW_TO_NHWC);
}

/** Activations NHWC -> NCHW (also the backward of `nchwToNhwc`). */
export function nhwcToNchw(
  g: Gpu,
  x: GPUBuffer,
  p: { N: number; H: number; W: number; C: number },
): GPUBuffer {
  return permute4(g, x, [p.N, p.H, p.W, p.C], NHWC_TO_NCHW);
}

/**
 * Conv weight OIHW [Cout, Cin/groups, KH, KW] -> HWIO [KH, KW, Cin/groups, Cout]; with I = 1
 * also depthwise [C, 1, KH, KW] -> [KH, KW, 1, C].
 */
export function oihwToHwio(
  g: Gpu,
  w: GPUBuffer,
  p: { O: number; I: number; KH: number; KW: number },
): GPUBuffer {
  return permute4(g, w, [p.O, p.I, p.KH, p.KW], OIHW_TO_HWIO);
}

/** Conv weight HWIO -> OIHW (for saving in PyTorch layout). */
export function hwioToOihw(
  g: Gpu,
  w: GPUBuffer,
  p: { KH: number; KW: number; I: number; O: number },
): GPUBuffer {
  return permute4(g, w, [p.KH, p.KW, p.I, p.O], HWIO_TO_OIHW);
}

// ---------------------------------------------------------------------------------------------
// f64 CPU references

/** Concatenation along the last axis of [rows, channels[k]] arrays. */
export function concatCpu(inputs: readonly Float64Array[], rows: number): Float64Array {
  const chans = inputs.map((x) => x.length / rows);
  const outC = chans.reduce((a, b) => a + b, 0);
  const y = new Float64Array(rows * outC);
  let offset = 0;
  inputs.forEach((x, k) => {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < chans[k]; c++) y[r * outC + offset + c] = x[r * chans[k] + c];
    }
    offset += chans[k];
  });
  return y;
}

/** Channels offset..offset+outC of x [rows, inC]. */
export function sliceChannelsCpu(x: Float64Array, p: SliceChannelsParams): Float64Array {
  const y = new Float64Array(p.rows * p.outC);
  for (let r = 0; r < p.rows; r++) {
    for (let c = 0; c < p.outC; c++) y[r * p.outC + c] = x[r * p.inC + p.offset + c];
  }
  return y;
}

/** y = x * s[n, c] broadcast over H, W. */
export function channelScaleCpu(
  x: Float64Array,
  s: Float64Array,
  p: ChannelScaleParams,
): Float64Array {
  const HWC = p.H * p.W * p.C;
  return x.map((v, i) => v * s[Math.floor(i / HWC) * p.C + (i % p.C)]);
}

/** dx = dy * s, ds[n, c] = sum_hw dy * x. */
export function channelScaleBackwardCpu(
  x: Float64Array,
  s: Float64Array,
  dy: Float64Array,
  p: ChannelScaleParams,
): { dx: Float64Array; ds: Float64Array } {
  const HWC = p.H * p.W * p.C;
  const ds = new Float64Array(p.N * p.C);
  for (let i = 0; i < x.length; i++) ds[Math.floor(i / HWC) * p.C + (i % p.C)] += dy[i] * x[i];
  return { dx: channelScaleCpu(dy, s, p), ds };
}

/** 4-D permute: output axis k is input axis perm[k]. */
export function permute4Cpu(x: Float64Array, dims: Dims4, perm: Dims4): Float64Array {
  const od = permutedDims(dims, perm);
  const y = new Float64Array(x.length);
  const idx = [0, 0, 0, 0];
  let j = 0;
  for (let a = 0; a < od[0]; a++) {
    for (let b = 0; b < od[1]; b++) {
      for (let c = 0; c < od[2]; c++) {
        for (let d = 0; d < od[3]; d++) {
          [idx[perm[0]], idx[perm[1]], idx[perm[2]], idx[perm[3]]] = [a, b, c, d];
          y[j++] = x[((idx[0] * dims[1] + idx[1]) * dims[2] + idx[2]) * dims[3] + idx[3]];
        }
      }
    }
  }
  return y;
}

/** The permutation that undoes `perm` (the backward of a permute). */
export function inversePerm(perm: Dims4): Dims4 {
  const inv = [0, 0, 0, 0];
  perm.forEach((p, k) => inv[p] = k);
  return [inv[0], inv[1], inv[2], inv[3]];
}
