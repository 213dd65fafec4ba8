/**
 * Pooling on NHWC activations: max pool (with argmax for backward), average pool (PyTorch
 * defaults count_include_pad=True, ceil_mode=False, dilation 1) and global average pool.
 *
 * Every kernel puts the channel index in the fastest-varying thread position, so adjacent threads
 * read and write adjacent floats (C is contiguous in NHWC). Backward passes gather: one thread per
 * input element visits the few output windows that can cover it, so no atomics are needed.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, grid1d, gridFor } from "../runtime/grid.ts";
import { columnReduceSubgroupWgsl, useSubgroups } from "./reduce.ts";

export interface Pool2dParams {
  N: number;
  H: number;
  W: number;
  C: number;
  /** Window size, square or [kH, kW]. */
  kernel: number | readonly [number, number];
  /** Default: the window size (PyTorch default). */
  stride?: number | readonly [number, number];
  /** Implicit padding on each side; at most half the window, like PyTorch. Default 0. */
  padding?: number | readonly [number, number];
}

export interface AvgPool2dParams extends Pool2dParams {
  /** Divide by the full window including padded cells (PyTorch default true). */
  countIncludePad?: boolean;
}

export interface GlobalPoolParams {
  N: number;
  H: number;
  W: number;
  C: number;
  /** Force the workgroup-shared reduction (default: on real GPUs, off on llvmpipe). */
  shared?: boolean;
  /**
   * Force (true) or disable (false) the subgroup reduction; default: on adapters with
   * subgroups that are not software adapters, unless `shared` is given. See `hwReduceMode`.
   */
  subgroups?: boolean;
}

export interface PoolGeometry {
  kH: number;
  kW: number;
  sH: number;
  sW: number;
  pH: number;
  pW: number;
  OH: number;
  OW: number;
}

const WG = 64;

/** Output length of a pooling window along one axis (floor mode, dilation 1). */
export function poolOutSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

const pair = (v: number | readonly [number, number]): [number, number] =>
  typeof v === "number" ? [v, v] : [v[0], v[1]];

/** Window, stride, padding and output size of a 2-D pool; throws on shapes PyTorch rejects. */
export function pool2dGeometry(p: Pool2dParams): PoolGeometry {
  const [kH, kW] = pair(p.kernel);
  const [sH, sW] = pair(p.stride ?? p.kernel);
  const [pH, pW] = pair(p.padding ?? 0);
  if (!(kH > 0 && kW > 0 && sH > 0 && sW > 0 && pH >= 0 && pW >= 0)) {
    throw new Error(`pool: bad window/stride/padding ${JSON.stringify(p)}`);
  }
  if (2 * pH > kH || 2 * pW > kW) {
    throw new Error(`pool: padding should be at most half the window (${JSON.stringify(p)})`);
  }
  const OH = poolOutSize(p.H, kH, sH, pH), OW = poolOutSize(p.W, kW, sW, pW);
  if (!(OH > 0 && OW > 0 && p.N > 0 && p.C > 0)) {
    throw new Error(`pool: output would be empty for ${JSON.stringify(p)}`);
  }
  return { kH, kW, sH, sW, pH, pW, OH, OW };
}

/** WGSL that splits the linear index `i` (channel fastest) into n, a (row), b (col), c. */
function splitIndex(i: string, A: number, B: number, C: number): string {
  return `let c = ${i} % ${C}u;
  let b = i32((${i} / ${C}u) % ${B}u);
  let a = i32((${i} / ${C * B}u) % ${A}u);
  let n = ${i} / ${C * B * A}u;`;
}

/**
 * WGSL for the range of output positions along one axis whose window covers input position
 * `v`: ${name}Lo..${name}Hi inclusive (may be empty).
 */
function coverRange(name: string, v: string, k: number, s: number, p: number, O: number): string {
  return `let ${name}A = ${v} + (${p - k + 1});
  let ${name}Lo = select(0, (${name}A + ${s - 1}) / ${s}, ${name}A > 0);
  let ${name}Hi = min(${O - 1}, (${v} + ${p}) / ${s});`;
}

// ---------------------------------------------------------------------------------------------
// Max pool

/** Max pool forward, one thread per output element; padded cells never win. */
export function maxPoolWgsl(p: Pool2dParams): string {
  const { kH, kW, sH, sW, pH, pW, OH, OW } = pool2dGeometry(p);
  const { H, W, C } = p;
  const total = p.N * OH * OW * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> argmax: array<i32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  ${splitIndex("i", OH, OW, C)}
  var best = ${f32lit(-Infinity)};
  var arg = -1;
  for (var kh = 0; kh < ${kH}; kh = kh + 1) {
    let h = a * ${sH} - ${pH} + kh;
    if (h < 0 || h >= ${H}) { continue; }
    for (var kw = 0; kw < ${kW}; kw = kw + 1) {
      let w = b * ${sW} - ${pW} + kw;
      if (w < 0 || w >= ${W}) { continue; }
      let v = x[((n * ${H}u + u32(h)) * ${W}u + u32(w)) * ${C}u + c];
      if (v > best || arg < 0) {
        best = v;
        arg = h * ${W} + w;
      }
    }
  }
  y[i] = best;
  argmax[i] = arg;
}`;
}

/** Max pool backward, one thread per input element gathering the windows whose argmax it is. */
export function maxPoolBackwardWgsl(p: Pool2dParams): string {
  const { kH, kW, sH, sW, pH, pW, OH, OW } = pool2dGeometry(p);
  const { H, W, C } = p;
  const total = p.N * H * W * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> argmax: array<i32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  ${splitIndex("i", H, W, C)}
  ${coverRange("oh", "a", kH, sH, pH, OH)}
  ${coverRange("ow", "b", kW, sW, pW, OW)}
  let me = a * ${W} + b;
  var acc = 0.0;
  for (var oh = ohLo; oh <= ohHi; oh = oh + 1) {
    for (var ow = owLo; ow <= owHi; ow = ow + 1) {
      let o = ((n * ${OH}u + u32(oh)) * ${OW}u + u32(ow)) * ${C}u + c;
      if (argmax[o] == me) { acc = acc + dy[o]; }
    }
  }
  dx[i] = acc;
}`;
}

/** Max pool: the output [N, OH, OW, C] and the argmax (h*W + w within the image, i32). */
export function maxPool2d(
  g: Gpu,
  x: GPUBuffer,
  p: Pool2dParams,
): { y: GPUBuffer; argmax: GPUBuffer } {
  const { OH, OW } = pool2dGeometry(p);
  const total = p.N * OH * OW * p.C;
  const y = g.pool.acquire(total * 4), argmax = g.pool.acquire(total * 4);
  g.run(maxPoolWgsl(p), [x, y, argmax], gridFor(total, WG).workgroups);
  return { y, argmax };
}

/** dx [N, H, W, C] from dy [N, OH, OW, C] and the argmax of the forward. */
export function maxPool2dBackward(
  g: Gpu,
  dy: GPUBuffer,
  argmax: GPUBuffer,
  p: Pool2dParams,
): GPUBuffer {
  const total = p.N * p.H * p.W * p.C;
  const dx = g.pool.acquire(total * 4);
  g.run(maxPoolBackwardWgsl(p), [dy, argmax, dx], gridFor(total, WG).workgroups);
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Average pool

/** WGSL divisor of the window starting at (hs, ws) (i32 expressions). */
function divisorWgsl(p: AvgPool2dParams, g: PoolGeometry, hs: string, ws: string): string {
  if (p.countIncludePad ?? true) return f32lit(g.kH * g.kW); // ceil_mode=False: never clipped
  return `f32((min(${hs} + ${g.kH}, ${p.H}) - max(${hs}, 0)) * ` +
    `(min(${ws} + ${g.kW}, ${p.W}) - max(${ws}, 0)))`;
}

/** Average pool forward, one thread per output element. */
export function avgPoolWgsl(p: AvgPool2dParams): string {
  const geo = pool2dGeometry(p);
  const { kH, kW, sH, sW, pH, pW, OH, OW } = geo;
  const { H, W, C } = p;
  const total = p.N * OH * OW * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  ${splitIndex("i", OH, OW, C)}
  let hs = a * ${sH} - ${pH};
  let ws = b * ${sW} - ${pW};
  var acc = 0.0;
  for (var h = max(hs, 0); h < min(hs + ${kH}, ${H}); h = h + 1) {
    for (var w = max(ws, 0); w < min(ws + ${kW}, ${W}); w = w + 1) {
      acc = acc + x[((n * ${H}u + u32(h)) * ${W}u + u32(w)) * ${C}u + c];
    }
  }
  y[i] = acc / ${divisorWgsl(p, geo, "hs", "ws")};
}`;
}

/** Average pool backward, one thread per input element gathering its covering windows. */
export function avgPoolBackwardWgsl(p: AvgPool2dParams): string {
  const geo = pool2dGeometry(p);
  const { kH, kW, sH, sW, pH, pW, OH, OW } = geo;
  const { H, W, C } = p;
  const total = p.N * H * W * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  ${splitIndex("i", H, W, C)}
  ${coverRange("oh", "a", kH, sH, pH, OH)}
  ${coverRange("ow", "b", kW, sW, pW, OW)}
  var acc = 0.0;
  for (var oh = ohLo; oh <= ohHi; oh = oh + 1) {
    for (var ow = owLo; ow <= owHi; ow = ow + 1) {
      let hs = oh * ${sH} - ${pH};
      let ws = ow * ${sW} - ${pW};
      let o = ((n * ${OH}u + u32(oh)) * ${OW}u + u32(ow)) * ${C}u + c;
      acc = acc + dy[o] / ${divisorWgsl(p, geo, "hs", "ws")};
    }
  }
  dx[i] = acc;
}`;
}

/** Average pool [N, H, W, C] -> [N, OH, OW, C]. */
export function avgPool2d(g: Gpu, x: GPUBuffer, p: AvgPool2dParams): GPUBuffer {
  const { OH, OW } = pool2dGeometry(p);
  const total = p.N * OH * OW * p.C;
  const y = g.pool.acquire(total * 4);
  g.run(avgPoolWgsl(p), [x, y], gridFor(total, WG).workgroups);
  return y;
}

/** dx [N, H, W, C] from dy [N, OH, OW, C]. */
export function avgPool2dBackward(g: Gpu, dy: GPUBuffer, p: AvgPool2dParams): GPUBuffer {
  const total = p.N * p.H * p.W * p.C;
  const dx = g.pool.acquire(total * 4);
  g.run(avgPoolBackwardWgsl(p), [dy, dx], gridFor(total, WG).workgroups);
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Reduction over H*W per (n, c), shared with squeeze-excitation (structure.ts)

/** Channel lanes x HW lanes of the workgroup-shared variant. */
const RC = 32, RL = 8;

/** Which `hwReduceWgsl` variant: false (serial), true (workgroup-shared) or "subgroup". */
export type HwReduceMode = boolean | "subgroup";

/**
 * The `hwReduceWgsl` variant for `g` and the caller's options: `subgroups` true forces the
 * subgroup kernel (throws without subgroups) and false rules it out; left out, the subgroup
 * kernel runs on adapters with subgroups that are not software adapters unless `shared` is
 * given. Otherwise `shared` (default: on real GPUs) picks the shared or the serial kernel.
 */
export function hwReduceMode(
  g: Gpu,
  opts: { shared?: boolean; subgroups?: boolean },
): HwReduceMode {
  const sg = opts.subgroups ?? (opts.shared === undefined ? undefined : false);
  if (useSubgroups(g, sg)) return "subgroup";
  return opts.shared ?? !g.info.isFallback;
}

/**
 * A kernel computing out[n*C + c] = finish(sum over p < HW of term(i)) with
 * i = (n*HW + p)*C + c. `decls` are the binding declarations. Fallback: one thread per (n, c),
 * adjacent threads on adjacent c, no barriers (fast on llvmpipe). Shared: workgroups of
 * 32 channels x 8 HW lanes, combined through workgroup memory (8x the parallelism on GPUs).
 * "subgroup": reduce.ts `columnReduceSubgroupWgsl` over N blocks of [HW, C], workgroups of
 * 8 channels x up to 32 HW lanes combined with subgroup shuffles / adds (`workgroupSize`
 * overrides its invocation count; the other variants ignore it).
 */
export function hwReduceWgsl(
  N: number,
  HW: number,
  C: number,
  decls: string,
  term: (i: string) => string,
  finish: (acc: string, out: string) => string,
  shared: HwReduceMode,
  workgroupSize?: number,
): { code: string; workgroups: [number, number, number] } {
  if (shared === "subgroup") {
    return columnReduceSubgroupWgsl({
      batches: N,
      rows: HW,
      cols: C,
      decls,
      term,
      finish,
      workgroupSize,
    });
  }
  if (!shared) {
    const grid = gridFor(N * C, WG);
    const code = `${decls}
${entry1d(WG)} {
  let t = ${grid.index};
  if (t >= ${N * C}u) { return; }
  let c = t % ${C}u;
  let n = t / ${C}u;
  var acc = 0.0;
  for (var p = 0u; p < ${HW}u; p = p + 1u) {
    let i = (n * ${HW}u + p) * ${C}u + c;
    acc = acc + ${term("i")};
  }
  ${finish("acc", "t")}
}`;
    return { code, workgroups: grid.workgroups };
  }
  const CB = Math.ceil(C / RC);
  const grid = grid1d(N * CB, RC * RL);
  const code = `${decls}
var<workgroup> sm: array<f32, ${RC * RL}>;
${entry1d(RC * RL)} {
  let gi = ${grid.group};
  let n = gi / ${CB}u;
  let c = (gi % ${CB}u) * ${RC}u + lid.x % ${RC}u;
  let lane = lid.x / ${RC}u;
  var acc = 0.0;
  if (c < ${C}u && n < ${N}u) {
    for (var p = lane; p < ${HW}u; p = p + ${RL}u) {
      let i = (n * ${HW}u + p) * ${C}u + c;
      acc = acc + ${term("i")};
    }
  }
  sm[lid.x] = acc;
  workgroupBarrier();
  if (lane == 0u && c < ${C}u && n < ${N}u) {
    var total = 0.0;
    for (var l = 0u; l < ${RL}u; l = l + 1u) { total = total + sm[l * ${RC}u + lid.x]; }
    let t = n * ${C}u + c;
    ${finish("total", "t")}
  }
}`;
  return { code, workgroups: grid.workgroups };
}

// ---------------------------------------------------------------------------------------------
// Global average pool

/** Global average pool [N, H, W, C] -> [N, C]. */
export function globalAvgPool(g: Gpu, x: GPUBuffer, p: GlobalPoolParams): GPUBuffer {
  const HW = p.H * p.W;
  const y = g.pool.acquire(p.N * p.C * 4);
  const { code, workgroups } = hwReduceWgsl(
    p.N,
    HW,
    p.C,
    `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;`,
    (i) => `x[${i}]`,
    (acc, t) => `y[${t}] = ${acc} * ${f32lit(1 / HW)};`,
    hwReduceMode(g, p),
  );
  g.run(code, [x, y], workgroups);
  return y;
}

/** Global average pool backward, one thread per input element: dx = dy[n, c] / (H*W). */
export function globalAvgPoolBackwardWgsl(p: GlobalPoolParams): string {
  const { N, H, W, C } = p;
  const total = N * H * W * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  dx[i] = dy[(i / ${H * W * C}u) * ${C}u + i % ${C}u] * ${f32lit(1 / (H * W))};
}`;
}

/** dx [N, H, W, C] from dy [N, C]. */
export function globalAvgPoolBackward(g: Gpu, dy: GPUBuffer, p: GlobalPoolParams): GPUBuffer {
  const total = p.N * p.H * p.W * p.C;
  const dx = g.pool.acquire(total * 4);
  g.run(globalAvgPoolBackwardWgsl(p), [dy, dx], gridFor(total, WG).workgroups);
  return dx;
}

// ---------------------------------------------------------------------------------------------
// f64 CPU references

/** Max pool in f64; argmax holds h*W + w within the image (first maximum wins, like PyTorch). */
export function maxPool2dCpu(
  x: Float64Array,
  p: Pool2dParams,
): { y: Float64Array; argmax: Int32Array } {
  const { kH, kW, sH, sW, pH, pW, OH, OW } = pool2dGeometry(p);
  const { N, H, W, C } = p;
  const y = new Float64Array(N * OH * OW * C), argmax = new Int32Array(y.length);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let c = 0; c < C; c++) {
          let best = -Infinity, arg = -1;
          for (let h = oh * sH - pH; h < oh * sH - pH + kH; h++) {
            for (let w = ow * sW - pW; w < ow * sW - pW + kW; w++) {
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const v = x[((n * H + h) * W + w) * C + c];
              if (v > best || arg < 0) [best, arg] = [v, h * W + w];
            }
          }
          const o = ((n * OH + oh) * OW + ow) * C + c;
          y[o] = best;
          argmax[o] = arg;
        }
      }
    }
  }
  return { y, argmax };
}

/** Max pool backward in f64 (scatter form, independent of the GPU gather). */
export function maxPool2dBackwardCpu(
  dy: Float64Array,
  argmax: Int32Array,
  p: Pool2dParams,
): Float64Array {
  const { OH, OW } = pool2dGeometry(p);
  const { N, H, W, C } = p;
  const dx = new Float64Array(N * H * W * C);
  for (let o = 0; o < N * OH * OW * C; o++) {
    const c = o % C, n = Math.floor(o / (OH * OW * C));
    dx[(n * H * W + argmax[o]) * C + c] += dy[o];
  }
  return dx;
}

function avgWindows(
  p: AvgPool2dParams,
  visit: (o: number, inputIndex: number, divisor: number) => void,
): void {
  const { kH, kW, sH, sW, pH, pW, OH, OW } = pool2dGeometry(p);
  const { N, H, W, C } = p;
  const include = p.countIncludePad ?? true;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const hs = oh * sH - pH, ws = ow * sW - pW;
        const h0 = Math.max(hs, 0), h1 = Math.min(hs + kH, H);
        const w0 = Math.max(ws, 0), w1 = Math.min(ws + kW, W);
        const div = include
          ? (Math.min(hs + kH, H + pH) - hs) * (Math.min(ws + kW, W + pW) - ws)
          : (h1 - h0) * (w1 - w0);
        for (let c = 0; c < C; c++) {
          const o = ((n * OH + oh) * OW + ow) * C + c;
          for (let h = h0; h < h1; h++) {
            for (let w = w0; w < w1; w++) visit(o, ((n * H + h) * W + w) * C + c, div);
          }
        }
      }
    }
  }
}

/** Average pool in f64 (PyTorch's divisor rule: window clipped to the padded extent). */
export function avgPool2dCpu(x: Float64Array, p: AvgPool2dParams): Float64Array {
  const { OH, OW } = pool2dGeometry(p);
  const y = new Float64Array(p.N * OH * OW * p.C);
  avgWindows(p, (o, i, div) => y[o] += x[i] / div);
  return y;
}

/** Average pool backward in f64. */
export function avgPool2dBackwardCpu(dy: Float64Array, p: AvgPool2dParams): Float64Array {
  const dx = new Float64Array(p.N * p.H * p.W * p.C);
  avgWindows(p, (o, i, div) => dx[i] += dy[o] / div);
  return dx;
}

/** Global average pool in f64: [N, H, W, C] -> [N, C]. */
export function globalAvgPoolCpu(x: Float64Array, p: GlobalPoolParams): Float64Array {
  const { N, H, W, C } = p;
  const y = new Float64Array(N * C);
  for (let i = 0; i < N * H * W * C; i++) {
    y[Math.floor(i / (H * W * C)) * C + (i % C)] += x[i] / (H * W);
  }
  return y;
}

/** Global average pool backward in f64. */
export function globalAvgPoolBackwardCpu(dy: Float64Array, p: GlobalPoolParams): Float64Array {
  const { N, H, W, C } = p;
  const dx = new Float64Array(N * H * W * C);
  for (let i = 0; i < dx.length; i++) {
    dx[i] = dy[Math.floor(i / (H * W * C)) * C + (i % C)] / (H * W);
  }
  return dx;
}
