/**
 * Depthwise conv2d (groups = channels, multiplier 1), NHWC, weights [KH, KW, C], any kernel
 * size, stride and (asymmetric) padding, dilation 1, with a fused bias + activation epilogue.
 *
 * Forward (and the stride-1 input gradient, which is the same window sum over dy with the
 * kernel flipped): one invocation per (n, oh, block of TW output columns, 4 channels). With
 * C % 4 == 0 everything is read as vec4 over channels (contiguous in NHWC); otherwise one
 * channel per invocation. For each kernel row the (TW-1)*stride + KW input values the block
 * needs are loaded once into separate registers and reused across the KW taps; KH, KW,
 * stride and padding are baked in, so the taps are fully unrolled. No workgroup memory and no
 * barriers, which also keeps it fast on software adapters.
 *
 * Input gradient for stride > 1: one invocation per (n, ih, iw, 4 channels), gathering the
 * taps whose output position is an integer (the divisibility tests are on constants).
 *
 * Weight gradient, ONE launch: a workgroup owns one kernel row kh and 4 channels (or one),
 * keeps KW vec4 accumulators per thread while its threads stride over all N*OH*OW output
 * positions, then reduces the KW sums across threads in workgroup memory (log2(WG) barriers).
 * Bias gradient: the per-channel sum of dy (`sumRows` of conv2d.ts).
 *
 * Fused activation: relu/relu6 gradients can be formed from the output y; silu needs the
 * pre-activation (see conv2d.ts).
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, gridFor } from "../runtime/grid.ts";
import { type Activation, activationWgsl } from "./gemm.ts";
import {
  conv2dBackwardCpu,
  conv2dCpu,
  type Conv2dParams,
  conv2dParams,
  sumRows,
} from "./conv2d.ts";

export interface DepthwiseParams {
  N: number;
  H: number;
  W: number;
  C: number;
  KH: number;
  KW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padBottom: number;
  padLeft: number;
  padRight: number;
}

export interface DepthwiseConfig {
  /** Output columns per invocation (forward and stride-1 input gradient); default 4. */
  tileW?: number;
  /** Read 4 channels as a vec4 when C % 4 == 0 (default true); false forces the scalar path. */
  vec4?: boolean;
  /** Threads per workgroup of the weight gradient (a power of two); default 64. */
  wgWeight?: number;
}

export function depthwiseOutputSize(p: DepthwiseParams): { OH: number; OW: number } {
  return {
    OH: Math.floor((p.H + p.padTop + p.padBottom - p.KH) / p.strideH) + 1,
    OW: Math.floor((p.W + p.padLeft + p.padRight - p.KW) / p.strideW) + 1,
  };
}

function validate(p: DepthwiseParams): { OH: number; OW: number } {
  const { OH, OW } = depthwiseOutputSize(p);
  const ok =
    [p.N, p.H, p.W, p.C, p.KH, p.KW, p.strideH, p.strideW].every((v) =>
      Number.isInteger(v) && v >= 1
    ) && [p.padTop, p.padBottom, p.padLeft, p.padRight].every((v) => Number.isInteger(v) && v >= 0);
  if (!ok || OH < 1 || OW < 1) throw new Error(`invalid depthwise params ${JSON.stringify(p)}`);
  return { OH, OW };
}

interface Lanes {
  /** WGSL element type of the buffers. */
  T: string;
  zero: string;
  /** Channel slots per pixel (C/4 or C). */
  CV: number;
}

function lanes(C: number, config: DepthwiseConfig): Lanes {
  return (config.vec4 ?? true) && C % 4 === 0
    ? { T: "vec4<f32>", zero: "vec4<f32>(0.0)", CV: C / 4 }
    : { T: "f32", zero: "0.0", CV: C };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * A window sum out[n, oh, ow] = sum_{kh, kw} inp[n, oh*SH + kh - PT, ow*SW + kw - PL] * w[tap]
 * (zero outside inp), with pads that may be negative and an optionally flipped kernel.
 */
interface Window {
  N: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  C: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  PT: number;
  PL: number;
  flip: boolean;
  bias: boolean;
  activation: Activation;
}

/** Generated source of one depthwise launch and its dispatch size. */
export interface DepthwiseKernel {
  code: string;
  workgroups: [number, number, number];
}

function windowWgsl(s: Window, config: DepthwiseConfig, wg: number): DepthwiseKernel {
  const { T, zero, CV } = lanes(s.C, config);
  const TW = Math.max(1, Math.min(config.tileW ?? 4, s.outW));
  const blocks = Math.ceil(s.outW / TW);
  const total = s.N * s.outH * blocks * CV;
  const grid = gridFor(total, wg);
  const span = (TW - 1) * s.SW + s.KW;
  const body: string[] = [];
  body.push(`let idx = ${grid.index};`);
  body.push(`if (idx >= ${total}u) { return; }`);
  body.push(`let cv = idx % ${CV}u;`);
  body.push(`let r1 = idx / ${CV}u;`);
  body.push(`let ow0 = (r1 % ${blocks}u) * ${TW}u;`);
  body.push(`let r2 = r1 / ${blocks}u;`);
  body.push(`let oh = r2 % ${s.outH}u;`);
  body.push(`let n = r2 / ${s.outH}u;`);
  body.push(`let iw0 = i32(ow0 * ${s.SW}u) - ${s.PL}i;`);
  for (const j of range(TW)) body.push(`var acc${j} = ${zero};`);
  for (const kh of range(s.KH)) {
    body.push(`{`);
    body.push(`  let ih = i32(oh * ${s.SH}u + ${kh}u) - ${s.PT}i;`);
    body.push(`  if (ih >= 0 && ih < ${s.inH}i) {`);
    body.push(`    let rb = (n * ${s.inH}u + u32(ih)) * ${s.inW}u;`);
    for (const t of range(span)) {
      body.push(`    let iw${t} = iw0 + ${t}i;`);
      body.push(`    let ok${t} = iw${t} >= 0 && iw${t} < ${s.inW}i;`);
      body.push(
        `    let x${t} = select(${zero}, inp[select(0u, (rb + u32(iw${t})) * ${CV}u + cv, ok${t})], ok${t});`,
      );
    }
    for (const kw of range(s.KW)) {
      const tap = s.flip ? (s.KH - 1 - kh) * s.KW + (s.KW - 1 - kw) : kh * s.KW + kw;
      body.push(`    let w${kw} = wt[${tap * CV}u + cv];`);
      for (const j of range(TW)) body.push(`    acc${j} = acc${j} + x${j * s.SW + kw} * w${kw};`);
    }
    body.push(`  }`);
    body.push(`}`);
  }
  if (s.bias) body.push(`let bv = bias[cv];`);
  for (const j of range(TW)) {
    const v = s.bias ? `acc${j} + bv` : `acc${j}`;
    body.push(`if (ow0 + ${j}u < ${s.outW}u) {`);
    body.push(`  let v${j} = ${v};`);
    body.push(
      `  out[((n * ${s.outH}u + oh) * ${s.outW}u + ow0 + ${j}u) * ${CV}u + cv] = ${
        activationWgsl(s.activation, `v${j}`, T)
      };`,
    );
    body.push(`}`);
  }
  let b = 0;
  const decls = [
    `@group(0) @binding(${b++}) var<storage, read> inp: array<${T}>;`,
    `@group(0) @binding(${b++}) var<storage, read> wt: array<${T}>;`,
  ];
  if (s.bias) decls.push(`@group(0) @binding(${b++}) var<storage, read> bias: array<${T}>;`);
  decls.push(`@group(0) @binding(${b++}) var<storage, read_write> out: array<${T}>;`);
  return {
    code: `${decls.join("\n")}
${entry1d(wg)} {
${body.map((l) => "  " + l).join("\n")}
}
`,
    workgroups: grid.workgroups,
  };
}

const WG = 64;

/** WGSL and grid of the forward depthwise conv (inputs x, w, bias?; output y). */
export function depthwiseWgsl(
  p: DepthwiseParams,
  epilogue: { bias?: boolean; activation?: Activation } = {},
  config: DepthwiseConfig = {},
): DepthwiseKernel {
  const { OH, OW } = validate(p);
  return windowWgsl(
    {
      N: p.N,
      inH: p.H,
      inW: p.W,
      outH: OH,
      outW: OW,
      C: p.C,
      KH: p.KH,
      KW: p.KW,
      SH: p.strideH,
      SW: p.strideW,
      PT: p.padTop,
      PL: p.padLeft,
      flip: false,
      bias: Boolean(epilogue.bias),
      activation: epilogue.activation ?? "none",
    },
    config,
    WG,
  );
}

/** y [N, OH, OW, C] = act(depthwise(x [N, H, W, C], w [KH, KW, C]) + bias [C]). */
export function depthwise(
  g: Gpu,
  x: GPUBuffer,
  w: GPUBuffer,
  p: DepthwiseParams,
  opts: { bias?: GPUBuffer; activation?: Activation; config?: DepthwiseConfig } = {},
): GPUBuffer {
  const { OH, OW } = validate(p);
  const k = depthwiseWgsl(
    p,
    { bias: Boolean(opts.bias), activation: opts.activation },
    opts.config,
  );
  const out = g.pool.acquire(4 * p.N * OH * OW * p.C);
  g.run(k.code, opts.bias ? [x, w, opts.bias, out] : [x, w, out], k.workgroups);
  return out;
}

/** WGSL of the strided input gradient: one invocation per input element (vec4 of channels). */
function gatherInputWgsl(p: DepthwiseParams, config: DepthwiseConfig) {
  const { OH, OW } = validate(p);
  const { T, zero, CV } = lanes(p.C, config);
  const total = p.N * p.H * p.W * CV;
  const grid = gridFor(total, WG);
  const body: string[] = [];
  body.push(`let idx = ${grid.index};`);
  body.push(`if (idx >= ${total}u) { return; }`);
  body.push(`let cv = idx % ${CV}u;`);
  body.push(`let r1 = idx / ${CV}u;`);
  body.push(`let iw = i32(r1 % ${p.W}u);`);
  body.push(`let r2 = r1 / ${p.W}u;`);
  body.push(`let ih = i32(r2 % ${p.H}u);`);
  body.push(`let n = r2 / ${p.H}u;`);
  body.push(`var acc = ${zero};`);
  for (const kh of range(p.KH)) {
    body.push(`{`);
    body.push(`  let th = ih + ${p.padTop - kh}i;`);
    body.push(`  let oh = u32(th) / ${p.strideH}u;`);
    body.push(
      `  if (th >= 0 && th % ${p.strideH}i == 0 && oh < ${OH}u) {`,
    );
    for (const kw of range(p.KW)) {
      body.push(`    {`);
      body.push(`      let tw = iw + ${p.padLeft - kw}i;`);
      body.push(`      let ow = u32(tw) / ${p.strideW}u;`);
      body.push(`      let ok = tw >= 0 && tw % ${p.strideW}i == 0 && ow < ${OW}u;`);
      body.push(
        `      let d = dy[select(0u, ((n * ${OH}u + oh) * ${OW}u + ow) * ${CV}u + cv, ok)];`,
      );
      body.push(`      acc = acc + select(${zero}, d, ok) * wt[${(kh * p.KW + kw) * CV}u + cv];`);
      body.push(`    }`);
    }
    body.push(`  }`);
    body.push(`}`);
  }
  body.push(`dx[idx] = acc;`);
  return {
    code: `@group(0) @binding(0) var<storage, read> dy: array<${T}>;
@group(0) @binding(1) var<storage, read> wt: array<${T}>;
@group(0) @binding(2) var<storage, read_write> dx: array<${T}>;
${entry1d(WG)} {
${body.map((l) => "  " + l).join("\n")}
}
`,
    workgroups: grid.workgroups,
  };
}

/** WGSL and grid of the input gradient (inputs dy, w; output dx). */
export function depthwiseBackwardInputWgsl(
  p: DepthwiseParams,
  config: DepthwiseConfig = {},
): DepthwiseKernel {
  const { OH, OW } = validate(p);
  if (p.strideH > 1 || p.strideW > 1) return gatherInputWgsl(p, config);
  // Stride 1: dx[ih, iw] = sum dy[ih + PT - kh, iw + PL - kw] * w[kh, kw], a window sum over dy
  // with the kernel flipped and pads KH-1-PT, KW-1-PL (negative pads are fine).
  return windowWgsl(
    {
      N: p.N,
      inH: OH,
      inW: OW,
      outH: p.H,
      outW: p.W,
      C: p.C,
      KH: p.KH,
      KW: p.KW,
      SH: 1,
      SW: 1,
      PT: p.KH - 1 - p.padTop,
      PL: p.KW - 1 - p.padLeft,
      flip: true,
      bias: false,
      activation: "none",
    },
    config,
    WG,
  );
}

/** dx [N, H, W, C] from dy [N, OH, OW, C] and w [KH, KW, C]. One launch. */
export function depthwiseBackwardInput(
  g: Gpu,
  dy: GPUBuffer,
  w: GPUBuffer,
  p: DepthwiseParams,
  config: DepthwiseConfig = {},
): GPUBuffer {
  const k = depthwiseBackwardInputWgsl(p, config);
  const out = g.pool.acquire(4 * p.N * p.H * p.W * p.C);
  g.run(k.code, [dy, w, out], k.workgroups);
  return out;
}

/** WGSL and grid of the weight gradient (inputs x, dy; output dw, accumulated if asked). */
export function depthwiseBackwardWeightWgsl(
  p: DepthwiseParams,
  config: DepthwiseConfig = {},
  accumulate = false,
): DepthwiseKernel {
  const { OH, OW } = validate(p);
  const { T, zero, CV } = lanes(p.C, config);
  const wg = config.wgWeight ?? 64;
  if (wg < 1 || (wg & (wg - 1)) !== 0 || wg > 256) {
    throw new Error(`wgWeight must be a power of two <= 256, got ${wg}`);
  }
  const P = p.N * OH * OW;
  const groups = CV * p.KH;
  const body: string[] = [];
  body.push(`let grp = wid.y * 65535u + wid.x;`);
  body.push(`let cv = grp % ${CV}u;`);
  body.push(`let kh = grp / ${CV}u;`);
  body.push(`let t = lid.x;`);
  for (const kw of range(p.KW)) body.push(`var acc${kw} = ${zero};`);
  body.push(`if (grp < ${groups}u) {`);
  body.push(`  for (var q = t; q < ${P}u; q = q + ${wg}u) {`);
  body.push(`    let ow = q % ${OW}u;`);
  body.push(`    let r1 = q / ${OW}u;`);
  body.push(`    let oh = r1 % ${OH}u;`);
  body.push(`    let n = r1 / ${OH}u;`);
  body.push(`    let ih = i32(oh * ${p.strideH}u + kh) - ${p.padTop}i;`);
  body.push(`    if (ih >= 0 && ih < ${p.H}i) {`);
  body.push(`      let d = dy[q * ${CV}u + cv];`);
  body.push(`      let rb = (n * ${p.H}u + u32(ih)) * ${p.W}u;`);
  body.push(`      let iw0 = i32(ow * ${p.strideW}u) - ${p.padLeft}i;`);
  for (const kw of range(p.KW)) {
    body.push(`      {`);
    body.push(`        let iw = iw0 + ${kw}i;`);
    body.push(`        let ok = iw >= 0 && iw < ${p.W}i;`);
    body.push(`        let xv = x[select(0u, (rb + u32(iw)) * ${CV}u + cv, ok)];`);
    body.push(`        acc${kw} = acc${kw} + select(${zero}, xv, ok) * d;`);
    body.push(`      }`);
  }
  body.push(`    }`);
  body.push(`  }`);
  body.push(`}`);
  for (const kw of range(p.KW)) body.push(`part[${kw * wg}u + t] = acc${kw};`);
  for (let s = wg / 2; s >= 1; s /= 2) {
    body.push(`workgroupBarrier();`);
    body.push(`if (t < ${s}u) {`);
    for (const kw of range(p.KW)) {
      body.push(`  part[${kw * wg}u + t] = part[${kw * wg}u + t] + part[${kw * wg + s}u + t];`);
    }
    body.push(`}`);
  }
  body.push(`if (t == 0u && grp < ${groups}u) {`);
  for (const kw of range(p.KW)) {
    const o = `(kh * ${p.KW}u + ${kw}u) * ${CV}u + cv`;
    body.push(
      accumulate ? `  dw[${o}] = dw[${o}] + part[${kw * wg}u];` : `  dw[${o}] = part[${kw * wg}u];`,
    );
  }
  body.push(`}`);
  const gx = Math.min(groups, 65535);
  return {
    code: `@group(0) @binding(0) var<storage, read> x: array<${T}>;
@group(0) @binding(1) var<storage, read> dy: array<${T}>;
@group(0) @binding(2) var<storage, read_write> dw: array<${T}>;
var<workgroup> part: array<${T}, ${p.KW * wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${body.map((l) => "  " + l).join("\n")}
}
`,
    workgroups: [gx, Math.ceil(groups / gx), 1] as [number, number, number],
  };
}

/**
 * dw [KH, KW, C] = sum over n, oh, ow of x-window * dy. One launch. With `out`, the gradient
 * is added to its contents and `out` is returned.
 */
export function depthwiseBackwardWeight(
  g: Gpu,
  x: GPUBuffer,
  dy: GPUBuffer,
  p: DepthwiseParams,
  opts: { config?: DepthwiseConfig; out?: GPUBuffer } = {},
): GPUBuffer {
  // Software adapters favour small workgroups here (benches: 35.8 -> 14.5 ms over 19 shapes).
  const { OH, OW } = validate(p);
  const wgWeight = g.info.isFallback ? (p.N * OH * OW > 2048 ? 16 : 8) : 64;
  const k = depthwiseBackwardWeightWgsl(p, { wgWeight, ...opts.config }, Boolean(opts.out));
  const out = opts.out ?? g.pool.acquire(4 * p.KH * p.KW * p.C);
  g.run(k.code, [x, dy, out], k.workgroups);
  return out;
}

/** dbias [C] = sum of dy [N, OH, OW, C] over N, OH, OW. One launch. */
export function depthwiseBackwardBias(g: Gpu, dy: GPUBuffer, p: DepthwiseParams): GPUBuffer {
  const { OH, OW } = validate(p);
  return sumRows(g, dy, p.N * OH * OW, p.C);
}

/** The same convolution as a grouped conv2d: a [KH, KW, C] weight is HWIO [KH, KW, 1, C]. */
function asConv(p: DepthwiseParams): Conv2dParams {
  return conv2dParams({ ...p, Cin: p.C, Cout: p.C, groups: p.C });
}

/** f64 reference of `depthwise` with its epilogue (the grouped-conv reference). */
export function depthwiseCpu(
  x: Float64Array,
  w: Float64Array,
  p: DepthwiseParams,
  opts: { bias?: Float64Array; activation?: Activation } = {},
): Float64Array {
  validate(p);
  return conv2dCpu(x, w, asConv(p), opts);
}

/** f64 reference of the depthwise backward (no activation): dx, dw and dbias. */
export function depthwiseBackwardCpu(
  x: Float64Array,
  w: Float64Array,
  dy: Float64Array,
  p: DepthwiseParams,
): { dx: Float64Array; dw: Float64Array; dbias: Float64Array } {
  validate(p);
  return conv2dBackwardCpu(x, w, dy, asConv(p));
}
