/**
 * NHWC conv2d (any kernel, stride, asymmetric padding, dilation, groups) as implicit GEMM on
 * gemm.ts: M = N*OH*OW output pixels, K = KH*KW*Cin/groups taps, N = Cout/groups channels, one
 * group per grid z. im2col happens inside the A loader's index math and is never stored;
 * weights are HWIO [KH, KW, Cin/groups, Cout], so B[k, col] is a plain row-major read.
 * A 1x1 stride-1 unpadded conv is a plain GEMM on [N*H*W, Cin].
 *
 * Backward, one launch each:
 * - input: dx [N*H*W, Cin/g] = dy-patches [N*H*W, KH*KW*Cout/g] · W^T, where the A loader maps
 *   each input pixel and tap back to the output pixel that used it (zero when the stride skips
 *   it: stride-s convs spend (s*s - 1)/(s*s) of these taps on zeros, a known cost).
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

/** GEMM spec of dx (inputs dy, w). */
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
  return {
    M: p.N * p.H * p.W,
    N: CinG,
    K: p.KH * p.KW * CoutG,
    batch: p.groups,
    inputs: ["dy", "w"],
    prelude: pointwise ? constants(p) : prelude,
    loadA: pointwise
      ? (row, k, z) => `dy[${row} * CV_COUT${groupOff(p, z, "CV_COUTG")} + ${k}]`
      : (row, k, z) => `cv_dypatch(${row}, ${k}, ${z})`,
    // B'[(kh, kw, co), ci] = w[kh, kw, ci, g*CoutG + co]
    loadB: (k, col, z) =>
      `w[((${k} / CV_COUTG) * CV_CING + ${col}) * CV_COUT${groupOff(p, z, "CV_COUTG")} + ` +
      `${k} % CV_COUTG]`,
    bContiguous: "k",
    storeIndex: (row, col, z) => `(${row} * CV_CIN${groupOff(p, z, "CV_CING")} + ${col})`,
  };
}

/** dx [N, H, W, Cin] from dy [N, OH, OW, Cout] and w [KH, KW, Cin/g, Cout]. One launch. */
export function conv2dBackwardInput(
  g: Gpu,
  dy: GPUBuffer,
  w: GPUBuffer,
  p: Conv2dParams,
  config?: GemmConfig,
): GPUBuffer {
  return gemm(g, conv2dBackwardInputSpec(p), [dy, w], {
    config,
    outElements: p.N * p.H * p.W * p.Cin,
  });
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
