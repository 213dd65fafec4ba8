/**
 * NHWC conv2d (any kernel, stride, asymmetric padding, dilation, groups) as implicit GEMM on
 * gemm.ts: M = N*OH*OW output pixels, K = KH*KW*Cin/groups taps, N = Cout/groups channels, one
 * group per grid z. im2col happens inside the A loader's index math and is never stored;
 * weights are HWIO [KH, KW, Cin/groups, Cout], so B[k, col] is a plain row-major read.
 * A 1x1 stride-1 unpadded conv is a plain GEMM on [N*H*W, Cin].
 *
 * Backward:
 * - input, stride 1: dx [N*H*W, Cin/g] = dy-patches [N*H*W, KH*KW*Cout/g] · W^T, where the A
 *   loader maps each input pixel and tap back to the output pixel that used it. One launch.
 * - input, stride > 1, by phases ("transposed conv by sub-pixels"): the input pixels with
 *   ih % strideH == rh and iw % strideW == rw are reached only by the taps kh, kw with
 *   (rh + padTop - kh*dilH) % strideH == 0 (same along w), so each of the strideH*strideW
 *   residue classes is its own dense GEMM over only those taps instead of one GEMM over all
 *   KH*KW taps of which (s*s - 1)/(s*s) would multiply zeros. At most strideH*strideW GEMM
 *   launches, plus one zero-fill launch when some class is reached by no tap at all.
 * - weight: dW [KH*KW*Cin/g, Cout/g] = im2col(x)^T · dy, one GEMM reducing over N*OH*OW.
 * - bias: the column sums of dy viewed as [N*OH*OW, Cout] (`sumRows`).
 *
 * Fused activation: `y = act(conv(x) + bias + residual)`. For the backward the caller needs
 * act'(pre-activation) times dy first: keep the output y for relu and relu6 (relu' = y > 0,
 * relu6' = 0 < y < 6); for silu keep the pre-activation (run the conv without the fused
 * activation and apply silu separately), since silu is not invertible from y.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { type Activation, activationCpu, gemm, type GemmConfig, type GemmSpec } from "./gemm.ts";
import { columnReduceSubgroupWgsl, useSubgroups } from "./reduce.ts";
import { entry1d, gridFor } from "../runtime/grid.ts";

export interface Conv2dParams {
  N: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  KH: number;
  KW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padBottom: number;
  padLeft: number;
  padRight: number;
  dilationH: number;
  dilationW: number;
  groups: number;
}

/** Full params from the required sizes: stride 1, no padding, dilation 1, one group. */
export function conv2dParams(
  p: Pick<Conv2dParams, "N" | "H" | "W" | "Cin" | "Cout" | "KH" | "KW"> & Partial<Conv2dParams>,
): Conv2dParams {
  return {
    strideH: 1,
    strideW: 1,
    padTop: 0,
    padBottom: 0,
    padLeft: 0,
    padRight: 0,
    dilationH: 1,
    dilationW: 1,
    groups: 1,
    ...p,
  };
}

export function conv2dOutputSize(p: Conv2dParams): { OH: number; OW: number } {
  const OH = Math.floor((p.H + p.padTop + p.padBottom - p.dilationH * (p.KH - 1) - 1) / p.strideH) +
    1;
  const OW = Math.floor((p.W + p.padLeft + p.padRight - p.dilationW * (p.KW - 1) - 1) / p.strideW) +
    1;
  return { OH, OW };
}

function validate(p: Conv2dParams): { OH: number; OW: number; CinG: number; CoutG: number } {
  const { OH, OW } = conv2dOutputSize(p);
  const positive = [p.N, p.H, p.W, p.Cin, p.Cout, p.KH, p.KW, p.strideH, p.strideW];
  const ok = positive.every((v) => Number.isInteger(v) && v >= 1) &&
    [p.padTop, p.padBottom, p.padLeft, p.padRight].every((v) => Number.isInteger(v) && v >= 0) &&
    p.dilationH >= 1 && p.dilationW >= 1 && p.groups >= 1 &&
    p.Cin % p.groups === 0 && p.Cout % p.groups === 0;
  if (!ok) throw new Error(`invalid conv2d params ${JSON.stringify(p)}`);
  if (OH < 1 || OW < 1) {
    throw new Error(`conv2d output would be empty (${OH}x${OW}) for ${JSON.stringify(p)}`);
  }
  return { OH, OW, CinG: p.Cin / p.groups, CoutG: p.Cout / p.groups };
}

/** True when the conv is a plain GEMM on [N*H*W, Cin] (1x1, stride 1, no padding). */
export function isPointwise(p: Conv2dParams): boolean {
  return p.KH === 1 && p.KW === 1 && p.strideH === 1 && p.strideW === 1 &&
    p.padTop + p.padBottom + p.padLeft + p.padRight === 0;
}

function constants(p: Conv2dParams): string {
  const { OH, OW, CinG, CoutG } = validate(p);
  const c: Record<string, number> = {
    H: p.H,
    W: p.W,
    CIN: p.Cin,
    COUT: p.Cout,
    CING: CinG,
    COUTG: CoutG,
    KW: p.KW,
    OH,
    OW,
    SH: p.strideH,
    SW: p.strideW,
    DH: p.dilationH,
    DW: p.dilationW,
  };
  const lines = Object.entries(c).map(([k, v]) => `const CV_${k} = ${v}u;`);
  lines.push(`const CV_PT = ${p.padTop}i;`, `const CV_PL = ${p.padLeft}i;`);
  return lines.join("\n");
}

/** `+ g * size` for grouped convs, nothing otherwise. */
const groupOff = (p: Conv2dParams, g: string, size: string) =>
  p.groups > 1 ? ` + ${g} * ${size}` : "";

/**
 * WGSL `cv_patch(row, k, g)`: element (row, k) of im2col(x) for group g, zero in the padding.
 * Bounds tests are generated only for the sides that can be crossed.
 */
function patchFn(p: Conv2dParams): string {
  const { OH, OW } = validate(p);
  const checks: string[] = [];
  if (p.padTop > 0) checks.push("ih >= 0");
  if ((OH - 1) * p.strideH + (p.KH - 1) * p.dilationH - p.padTop > p.H - 1) {
    checks.push(`ih < ${p.H}i`);
  }
  if (p.padLeft > 0) checks.push("iw >= 0");
  if ((OW - 1) * p.strideW + (p.KW - 1) * p.dilationW - p.padLeft > p.W - 1) {
    checks.push(`iw < ${p.W}i`);
  }
  const idx = `((n * CV_H + u32(ih)) * CV_W + u32(iw)) * CV_CIN${groupOff(p, "g", "CV_CING")} + ci`;
  const read = checks.length === 0 ? `return x[${idx}];` : `let ok = ${checks.join(" && ")};
  let idx = ${idx};
  return select(0.0, x[select(0u, idx, ok)], ok);`;
  return `fn cv_patch(row: u32, k: u32, g: u32) -> f32 {
  let ow = row % CV_OW;
  let r1 = row / CV_OW;
  let oh = r1 % CV_OH;
  let n = r1 / CV_OH;
  let ci = k % CV_CING;
  let k1 = k / CV_CING;
  let kw = k1 % CV_KW;
  let kh = k1 / CV_KW;
  let ih = i32(oh * CV_SH + kh * CV_DH) - CV_PT;
  let iw = i32(ow * CV_SW + kw * CV_DW) - CV_PL;
  ${read}
}`;
}

export interface Conv2dOptions {
  /** [Cout] added to every output pixel. */
  bias?: GPUBuffer;
  /** [N, OH, OW, Cout] added before the activation. */
  residual?: GPUBuffer;
  activation?: Activation;
  config?: GemmConfig;
}

/** GEMM spec of the forward conv (inputs x, w; epilogue from the options that are set). */
export function conv2dSpec(
  p: Conv2dParams,
  epilogue: { bias?: boolean; residual?: boolean; activation?: Activation } = {},
): GemmSpec {
  const { OH, OW, CinG, CoutG } = validate(p);
  const pointwise = isPointwise(p);
  return {
    M: p.N * OH * OW,
    N: CoutG,
    K: p.KH * p.KW * CinG,
    batch: p.groups,
    inputs: ["x", "w"],
    prelude: constants(p) + (pointwise ? "" : "\n" + patchFn(p)),
    loadA: pointwise
      ? (row, k, z) => `x[${row} * CV_CIN${groupOff(p, z, "CV_CING")} + ${k}]`
      : (row, k, z) => `cv_patch(${row}, ${k}, ${z})`,
    loadB: (k, col, z) => `w[${k} * CV_COUT${groupOff(p, z, "CV_COUTG")} + ${col}]`,
    // vec4 reads (shared variant only; gemm.ts checks K, resp. N, % 4): 4 consecutive input
    // channels of a pixel (pointwise) and 4 consecutive output channels of a weight row. With
    // Cin/g (Cout/g) % 4 == 0 every such group starts at a multiple of 4 elements.
    loadA4: pointwise && CinG % 4 === 0
      ? {
        inputs: ["x"],
        at: (row, k, z) => `x[(${row} * CV_CIN${groupOff(p, z, "CV_CING")} + ${k}) / 4u]`,
      }
      : undefined,
    loadB4: CoutG % 4 === 0
      ? {
        inputs: ["w"],
        at: (k, col, z) => `w[(${k} * CV_COUT${groupOff(p, z, "CV_COUTG")} + ${col}) / 4u]`,
      }
      : undefined,
    storeIndex: (row, col, z) => `(${row} * CV_COUT${groupOff(p, z, "CV_COUTG")} + ${col})`,
    epilogue: {
      ...epilogue,
      biasIndex: (col, z) => `(${col}${groupOff(p, z, "CV_COUTG")})`,
    },
  };
}

/** y [N, OH, OW, Cout] = act(conv2d(x [N, H, W, Cin], w [KH, KW, Cin/g, Cout]) + bias + residual). */
export function conv2d(
  g: Gpu,
  x: GPUBuffer,
  w: GPUBuffer,
  p: Conv2dParams,
  opts: Conv2dOptions = {},
): GPUBuffer {
  const spec = conv2dSpec(p, {
    bias: Boolean(opts.bias),
    residual: Boolean(opts.residual),
    activation: opts.activation,
  });
  const extra = [opts.bias, opts.residual].filter((b): b is GPUBuffer => Boolean(b));
  const { OH, OW } = conv2dOutputSize(p);
  return gemm(g, spec, [x, w, ...extra], {
    config: opts.config,
    outElements: p.N * OH * OW * p.Cout,
  });
}

/** dx's B operand: B'[(tap, co), ci] = w[tap, ci, g*CoutG + co] (`tap` a WGSL u32 tap index). */
const dxWeightIndex = (p: Conv2dParams, tap: string, k: string, col: string, z: string) =>
  `((${tap}) * CV_CING + ${col}) * CV_COUT${groupOff(p, z, "CV_COUTG")} + ${k} % CV_COUTG`;

/** vec4 loader of dx's weights along k (4 consecutive output channels of one tap). */
const dxWeight4 = (p: Conv2dParams, tap: (k: string) => string) =>
  p.Cout / p.groups % 4 === 0
    ? {
      inputs: ["w"],
      at: (k: string, col: string, z: string) => `w[(${dxWeightIndex(p, tap(k), k, col, z)}) / 4u]`,
    }
    : undefined;

/**
 * GEMM spec of dx (inputs dy, w) as one GEMM over all KH*KW taps: what `conv2dBackwardInput`
 * runs at stride 1. At stride > 1 it is still correct (the taps a stride skips read zero)
 * but `conv2dBackwardInputPhaseSpecs` avoids that wasted work.
 */
export function conv2dBackwardInputSpec(p: Conv2dParams): GemmSpec {
  const { CinG, CoutG } = validate(p);
  const pointwise = isPointwise(p);
  const checks = ["th >= 0", "tw >= 0"];
  if (p.strideH > 1) checks.push("th % CV_SHI == 0");
  if (p.strideW > 1) checks.push("tw % CV_SWI == 0");
  const prelude = `${constants(p)}
const CV_SHI = ${p.strideH}i;
const CV_SWI = ${p.strideW}i;
fn cv_dypatch(row: u32, k: u32, g: u32) -> f32 {
  let iw = row % CV_W;
  let r1 = row / CV_W;
  let ih = r1 % CV_H;
  let n = r1 / CV_H;
  let co = k % CV_COUTG;
  let k1 = k / CV_COUTG;
  let kw = k1 % CV_KW;
  let kh = k1 / CV_KW;
  let th = i32(ih) + CV_PT - i32(kh * CV_DH);
  let tw = i32(iw) + CV_PL - i32(kw * CV_DW);
  let oh = u32(th) / CV_SH;
  let ow = u32(tw) / CV_SW;
  let ok = ${checks.join(" && ")} && oh < CV_OH && ow < CV_OW;
  let idx = ((n * CV_OH + oh) * CV_OW + ow) * CV_COUT${groupOff(p, "g", "CV_COUTG")} + co;
  return select(0.0, dy[select(0u, idx, ok)], ok);
}`;
  const dyIndex = (row: string, k: string, z: string) =>
    `${row} * CV_COUT${groupOff(p, z, "CV_COUTG")} + ${k}`;
  const tap = (k: string) => `${k} / CV_COUTG`;
  return {
    M: p.N * p.H * p.W,
    N: CinG,
    K: p.KH * p.KW * CoutG,
    batch: p.groups,
    inputs: ["dy", "w"],
    prelude: pointwise ? constants(p) : prelude,
    loadA: pointwise
      ? (row, k, z) => `dy[${dyIndex(row, k, z)}]`
      : (row, k, z) => `cv_dypatch(${row}, ${k}, ${z})`,
    loadA4: pointwise && CoutG % 4 === 0
      ? { inputs: ["dy"], at: (row, k, z) => `dy[(${dyIndex(row, k, z)}) / 4u]` }
      : undefined,
    loadB: (k, col, z) => `w[${dxWeightIndex(p, tap(k), k, col, z)}]`,
    loadB4: dxWeight4(p, tap),
    bContiguous: "k",
    storeIndex: (row, col, z) => `(${row} * CV_CIN${groupOff(p, z, "CV_CING")} + ${col})`,
  };
}

const gcd = (a: number, b: number): number => b === 0 ? a : gcd(b, a % b);

/** The taps of one spatial dimension that reach the input positions of residue `r`. */
interface PhaseDim {
  /** Residue of the input positions (i = r + j*stride). */
  r: number;
  /** How many input positions have this residue. */
  size: number;
  /** First tap reaching them, tap step and count (0: none does). */
  first: number;
  step: number;
  count: number;
  /** Output position of input j and the a-th tap: j + off - a*outStep. */
  off: number;
  outStep: number;
}

function phaseDims(
  size: number,
  K: number,
  stride: number,
  pad: number,
  dil: number,
): PhaseDim[] {
  const d = gcd(stride, dil);
  const step = stride / d, outStep = dil / d;
  const out: PhaseDim[] = [];
  for (let r = 0; r < stride; r++) {
    const n = r < size ? Math.ceil((size - r) / stride) : 0;
    let first = -1;
    for (let k = 0; k < Math.min(K, step) && first < 0; k++) {
      if ((((r + pad - k * dil) % stride) + stride) % stride === 0) first = k;
    }
    const count = first < 0 ? 0 : Math.floor((K - 1 - first) / step) + 1;
    const off = first < 0 ? 0 : (r + pad - first * dil) / stride;
    out.push({ r, size: n, first: Math.max(first, 0), step, count, off, outStep });
  }
  return out;
}

/** Strides up to this use the phase decomposition (the zero-fill kernel uses bit masks). */
const MAX_PHASE_STRIDE = 32;

/**
 * The dense GEMMs of dx by phases (stride > 1): one spec per residue class (rh, rw) of input
 * positions that has positions and taps, each over only its taps (M = N*ceil((H-rh)/sH)*
 * ceil((W-rw)/sW), K = taps*Cout/g, one group per grid z), writing its pixels of dx [N, H, W,
 * Cin]. Positions of classes without taps are not written (`conv2dBackwardInput` zeroes them).
 */
export function conv2dBackwardInputPhaseSpecs(p: Conv2dParams): GemmSpec[] {
  const { OH, OW, CinG, CoutG } = validate(p);
  const hs = phaseDims(p.H, p.KH, p.strideH, p.padTop, p.dilationH);
  const ws = phaseDims(p.W, p.KW, p.strideW, p.padLeft, p.dilationW);
  const specs: GemmSpec[] = [];
  for (const ph of hs) {
    for (const pw of ws) {
      if (ph.size === 0 || pw.size === 0 || ph.count === 0 || pw.count === 0) continue;
      // Bounds tests only where an output position can leave [0, OH) / [0, OW).
      const checks: string[] = [];
      if (ph.off - (ph.count - 1) * ph.outStep < 0) checks.push("oh >= 0");
      if (ph.size - 1 + ph.off >= OH) checks.push(`oh < ${OH}i`);
      if (pw.off - (pw.count - 1) * pw.outStep < 0) checks.push("ow >= 0");
      if (pw.size - 1 + pw.off >= OW) checks.push(`ow < ${OW}i`);
      const idx = `((n * CV_OH + u32(oh)) * CV_OW + u32(ow)) * CV_COUT${
        groupOff(p, "g", "CV_COUTG")
      } + co`;
      const read = checks.length === 0 ? `return dy[${idx}];` : `let ok = ${checks.join(" && ")};
  return select(0.0, dy[select(0u, ${idx}, ok)], ok);`;
      const prelude = `${constants(p)}
const PH_HR = ${ph.size}u;
const PH_WR = ${pw.size}u;
const PH_NW = ${pw.count}u;
// dy of phase (${ph.r}, ${pw.r}): input (n, ${ph.r} + i*${p.strideH}, ${pw.r} + j*${p.strideW}),
// taps kh = ${ph.first} + a*${ph.step}, kw = ${pw.first} + b*${pw.step}.
fn cv_dyphase(row: u32, k: u32, g: u32) -> f32 {
  let j = row % PH_WR;
  let r1 = row / PH_WR;
  let i = r1 % PH_HR;
  let n = r1 / PH_HR;
  let co = k % CV_COUTG;
  let k1 = k / CV_COUTG;
  let b = k1 % PH_NW;
  let a = k1 / PH_NW;
  let oh = i32(i) + ${ph.off}i - i32(a) * ${ph.outStep}i;
  let ow = i32(j) + ${pw.off}i - i32(b) * ${pw.outStep}i;
  ${read}
}
fn cv_wtap(k: u32) -> u32 {
  let k1 = k / CV_COUTG;
  let kh = ${ph.first}u + (k1 / PH_NW) * ${ph.step}u;
  let kw = ${pw.first}u + (k1 % PH_NW) * ${pw.step}u;
  return kh * CV_KW + kw;
}`;
      const tap = (k: string) => `cv_wtap(${k})`;
      specs.push({
        M: p.N * ph.size * pw.size,
        N: CinG,
        K: ph.count * pw.count * CoutG,
        batch: p.groups,
        inputs: ["dy", "w"],
        prelude,
        loadA: (row, k, z) => `cv_dyphase(${row}, ${k}, ${z})`,
        loadB: (k, col, z) => `w[${dxWeightIndex(p, tap(k), k, col, z)}]`,
        loadB4: dxWeight4(p, tap),
        bContiguous: "k",
        storeIndex: (row, col, z) => {
          const n = `(${row} / ${ph.size * pw.size}u)`;
          const ih = `(${ph.r}u + ((${row} / ${pw.size}u) % ${ph.size}u) * ${p.strideH}u)`;
          const iw = `(${pw.r}u + (${row} % ${pw.size}u) * ${p.strideW}u)`;
          return `(((${n} * CV_H + ${ih}) * CV_W + ${iw}) * CV_CIN${
            groupOff(p, z, "CV_CING")
          } + ${col})`;
        },
      });
    }
  }
  return specs;
}

/**
 * WGSL zeroing the elements of dx [N, H, W, Cin] whose input position no tap reaches (a
 * stride larger than the dilated kernel along a dimension), or null when every position is
 * reached by some tap.
 */
export function conv2dBackwardInputZeroWgsl(p: Conv2dParams): string | null {
  validate(p);
  // Classes without positions (size 0) need no zeroing.
  const mask = (ds: PhaseDim[]) =>
    ds.reduce((m, d) => d.count === 0 && d.size > 0 ? m | (1 << d.r) : m, 0);
  const mh = mask(phaseDims(p.H, p.KH, p.strideH, p.padTop, p.dilationH)) >>> 0;
  const mw = mask(phaseDims(p.W, p.KW, p.strideW, p.padLeft, p.dilationW)) >>> 0;
  if (mh === 0 && mw === 0) return null;
  const n = p.N * p.H * p.W * p.Cin;
  const grid = gridFor(n, 256);
  return `@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
${entry1d(256)} {
  let e = ${grid.index};
  if (e >= ${n}u) { return; }
  let pix = e / ${p.Cin}u;
  let iw = pix % ${p.W}u;
  let ih = (pix / ${p.W}u) % ${p.H}u;
  if (((${mh}u >> (ih % ${p.strideH}u)) & 1u) != 0u || ((${mw}u >> (iw % ${p.strideW}u)) & 1u) != 0u) {
    dx[e] = 0.0;
  }
}
`;
}

/** True when `conv2dBackwardInput` runs by phases (stride > 1; see the module comment). */
export function usesPhases(p: Conv2dParams): boolean {
  return (p.strideH > 1 || p.strideW > 1) && p.strideH <= MAX_PHASE_STRIDE &&
    p.strideW <= MAX_PHASE_STRIDE;
}

/**
 * dx [N, H, W, Cin] from dy [N, OH, OW, Cout] and w [KH, KW, Cin/g, Cout]: one launch at
 * stride 1, at most strideH*strideW (+1 zero fill) by phases at stride > 1.
 */
export function conv2dBackwardInput(
  g: Gpu,
  dy: GPUBuffer,
  w: GPUBuffer,
  p: Conv2dParams,
  config?: GemmConfig,
): GPUBuffer {
  const elements = p.N * p.H * p.W * p.Cin;
  if (!usesPhases(p)) {
    return gemm(g, conv2dBackwardInputSpec(p), [dy, w], { config, outElements: elements });
  }
  const out = g.pool.acquire(4 * elements);
  const zero = conv2dBackwardInputZeroWgsl(p);
  if (zero) g.run(zero, [out], gridFor(elements, 256).workgroups);
  for (const spec of conv2dBackwardInputPhaseSpecs(p)) {
    gemm(g, spec, [dy, w], { config, out });
  }
  return out;
}

/** GEMM spec of dW (inputs x, dy); `accumulate` adds into an existing gradient. */
export function conv2dBackwardWeightSpec(p: Conv2dParams, accumulate = false): GemmSpec {
  const { OH, OW, CinG, CoutG } = validate(p);
  const pointwise = isPointwise(p);
  return {
    M: p.KH * p.KW * CinG,
    N: CoutG,
    K: p.N * OH * OW,
    batch: p.groups,
    inputs: ["x", "dy"],
    prelude: constants(p) + (pointwise ? "" : "\n" + patchFn(p)),
    loadA: pointwise
      ? (row, k, z) => `x[${k} * CV_CIN${groupOff(p, z, "CV_CING")} + ${row}]`
      : (row, k, z) => `cv_patch(${k}, ${row}, ${z})`,
    aContiguous: "row",
    loadB: (k, col, z) => `dy[${k} * CV_COUT${groupOff(p, z, "CV_COUTG")} + ${col}]`,
    storeIndex: (row, col, z) => `(${row} * CV_COUT${groupOff(p, z, "CV_COUTG")} + ${col})`,
    epilogue: { accumulate },
  };
}

/**
 * dW [KH, KW, Cin/g, Cout] = im2col(x)^T · dy, one GEMM over N*OH*OW. With `out`, the gradient
 * is added to its contents (gradient accumulation) and `out` is returned.
 */
export function conv2dBackwardWeight(
  g: Gpu,
  x: GPUBuffer,
  dy: GPUBuffer,
  p: Conv2dParams,
  opts: { config?: GemmConfig; out?: GPUBuffer } = {},
): GPUBuffer {
  return gemm(g, conv2dBackwardWeightSpec(p, Boolean(opts.out)), [x, dy], {
    config: opts.config,
    out: opts.out,
    outElements: p.KH * p.KW * (p.Cin / p.groups) * p.Cout,
  });
}

/** Columns handled by one workgroup of `sumRows`, and lanes per column. */
const SUM_COLS = 8, SUM_LANES = 32;

/**
 * WGSL of out[c] = sum_r x[r * cols + c]: a workgroup owns 8 adjacent columns (coalesced
 * 32-byte reads) and 32 lanes that stride over the rows, then a workgroup-memory tree sum.
 * Every column is finished by one workgroup, so a single launch suffices.
 */
export function sumRowsWgsl(rows: number, cols: number): string {
  const T = SUM_COLS * SUM_LANES;
  const steps: string[] = [];
  for (let s = SUM_LANES / 2; s >= 1; s /= 2) {
    steps.push(`workgroupBarrier();
  if (lane < ${s}u) { part[t] = part[t] + part[t + ${s * SUM_COLS}u]; }`);
  }
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<workgroup> part: array<f32, ${T}>;
@compute @workgroup_size(${SUM_COLS}, ${SUM_LANES})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wid.x * ${SUM_COLS}u + lid.x;
  let lane = lid.y;
  let t = lane * ${SUM_COLS}u + lid.x;
  let cc = min(c, ${cols - 1}u);
  var s = 0.0;
  for (var r = lane; r < ${rows}u; r = r + ${SUM_LANES}u) {
    s = s + x[r * ${cols}u + cc];
  }
  part[t] = s;
  ${steps.join("\n  ")}
  if (lane == 0u && c < ${cols}u) { out[c] = part[t]; }
}
`;
}

/** Options of `sumRows` / `conv2dBackwardBias`. */
export interface SumRowsOptions {
  /**
   * Force (true) or disable (false) the subgroup kernel (`columnReduceSubgroupWgsl` of
   * reduce.ts: 8 columns a workgroup, lanes combined with `subgroupAdd`). Default: on
   * adapters with subgroups that are not software adapters.
   */
  subgroups?: boolean;
  /** Invocations per workgroup of the subgroup kernel (default 256). */
  workgroupSize?: number;
}

/** out [cols] = column sums of x viewed as [rows, cols]. One launch. */
export function sumRows(
  g: Gpu,
  x: GPUBuffer,
  rows: number,
  cols: number,
  opts: SumRowsOptions = {},
): GPUBuffer {
  if (useSubgroups(g, opts.subgroups)) {
    const out = g.pool.acquire(4 * cols);
    const { code, workgroups } = columnReduceSubgroupWgsl({
      batches: 1,
      rows,
      cols,
      decls: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;`,
      term: (i) => `x[${i}]`,
      finish: (acc, t) => `out[${t}] = ${acc};`,
      workgroupSize: opts.workgroupSize,
    });
    g.run(code, [x, out], workgroups);
    return out;
  }
  const groups = Math.ceil(cols / SUM_COLS);
  if (groups > 65535) throw new Error(`sumRows: too many columns (${cols})`);
  const out = g.pool.acquire(4 * cols);
  g.run(sumRowsWgsl(rows, cols), [x, out], [groups, 1, 1]);
  return out;
}

/** dbias [Cout] = sum of dy [N, OH, OW, Cout] over N, OH, OW. One launch. */
export function conv2dBackwardBias(
  g: Gpu,
  dy: GPUBuffer,
  p: Conv2dParams,
  opts: SumRowsOptions = {},
): GPUBuffer {
  const { OH, OW } = conv2dOutputSize(p);
  return sumRows(g, dy, p.N * OH * OW, p.Cout, opts);
}

function forEachTap(
  p: Conv2dParams,
  fn: (xi: number, wi: number, yi: number) => void,
): void {
  const { OH, OW, CinG, CoutG } = validate(p);
  for (let n = 0; n < p.N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let kh = 0; kh < p.KH; kh++) {
          const ih = oh * p.strideH + kh * p.dilationH - p.padTop;
          if (ih < 0 || ih >= p.H) continue;
          for (let kw = 0; kw < p.KW; kw++) {
            const iw = ow * p.strideW + kw * p.dilationW - p.padLeft;
            if (iw < 0 || iw >= p.W) continue;
            for (let gr = 0; gr < p.groups; gr++) {
              for (let ci = 0; ci < CinG; ci++) {
                const xi = ((n * p.H + ih) * p.W + iw) * p.Cin + gr * CinG + ci;
                for (let co = 0; co < CoutG; co++) {
                  const c = gr * CoutG + co;
                  fn(
                    xi,
                    ((kh * p.KW + kw) * CinG + ci) * p.Cout + c,
                    ((n * OH + oh) * OW + ow) * p.Cout + c,
                  );
                }
              }
            }
          }
        }
      }
    }
  }
}

/** f64 reference of `conv2d` with its epilogue. */
export function conv2dCpu(
  x: Float64Array,
  w: Float64Array,
  p: Conv2dParams,
  opts: { bias?: Float64Array; residual?: Float64Array; activation?: Activation } = {},
): Float64Array {
  const { OH, OW } = validate(p);
  const y = new Float64Array(p.N * OH * OW * p.Cout);
  forEachTap(p, (xi, wi, yi) => {
    y[yi] += x[xi] * w[wi];
  });
  for (let i = 0; i < y.length; i++) {
    let v = y[i];
    if (opts.bias) v += opts.bias[i % p.Cout];
    if (opts.residual) v += opts.residual[i];
    y[i] = activationCpu(opts.activation ?? "none", v);
  }
  return y;
}

/** f64 reference of the conv backward (no activation): dx, dw and dbias. */
export function conv2dBackwardCpu(
  x: Float64Array,
  w: Float64Array,
  dy: Float64Array,
  p: Conv2dParams,
): { dx: Float64Array; dw: Float64Array; dbias: Float64Array } {
  const dx = new Float64Array(x.length), dw = new Float64Array(w.length);
  const dbias = new Float64Array(p.Cout);
  forEachTap(p, (xi, wi, yi) => {
    dx[xi] += dy[yi] * w[wi];
    dw[wi] += dy[yi] * x[xi];
  });
  for (let i = 0; i < dy.length; i++) dbias[i % p.Cout] += dy[i];
  return { dx, dw, dbias };
}
