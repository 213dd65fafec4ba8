/**
 * Batched matrix multiply C[z] = op(A[z]) · op(B[z]) on the GEMM generator (gemm.ts), with the
 * transposes folded into the loaders' index math (nothing is transposed in memory), and its
 * backward pass as two more GEMMs. An operand that is shared across the batch gets its
 * gradient summed over the batch inside one GEMM: the batch joins the reduction axis
 * (K' = batch * inner), so there is no separate reduction launch.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { type Epilogue, gemm, type GemmConfig, type GemmPrecision, type GemmSpec } from "./gemm.ts";

export interface MatmulParams {
  M: number;
  N: number;
  K: number;
  /** Default 1. */
  batch?: number;
  /** A is stored [batch?, K, M] and used transposed. */
  transA?: boolean;
  /** B is stored [batch?, N, K] and used transposed. */
  transB?: boolean;
  /** false: one A shared by every batch entry (default true). */
  batchA?: boolean;
  /** false: one B shared by every batch entry (default true). */
  batchB?: boolean;
  /**
   * "f16-storage": A and B are f16 buffers (e.g. from `castF32ToF16`), converted to f32 on
   * load; C stays f32. Forward only; needs the adapter's `shader-f16`. Default "f32".
   */
  precision?: GemmPrecision;
}

/** A logical 2-D operand [i, j] of batch z stored densely in buffer `name`. */
interface View {
  name: string;
  /** WGSL u32 element index of [i, j] of batch z. */
  index: (z: string, i: string, j: string) => string;
  /** The contiguous index. */
  fast: "i" | "j";
  /** Elements along the contiguous index (the stored row length, also the batch stride's factor). */
  width: number;
}

const at = (v: View, z: string, i: string, j: string) => `${v.name}[${v.index(z, i, j)}]`;
/** 4 consecutive elements along the contiguous index from [i, j] (a multiple of 4 there). */
const at4 = (v: View, z: string, i: string, j: string) => `${v.name}[(${v.index(z, i, j)}) / 4u]`;

const transpose = (v: View): View => ({
  ...v,
  index: (z, i, j) => v.index(z, j, i),
  fast: v.fast === "i" ? "j" : "i",
});

function opA(p: MatmulParams, name = "a"): View {
  const off = (z: string) => (p.batchA ?? true) ? `${z} * ${p.M * p.K}u + ` : "";
  return p.transA
    ? { name, index: (z, i, j) => `${off(z)}${j} * ${p.M}u + ${i}`, fast: "i", width: p.M }
    : { name, index: (z, i, j) => `${off(z)}${i} * ${p.K}u + ${j}`, fast: "j", width: p.K };
}

function opB(p: MatmulParams, name = "b"): View {
  const off = (z: string) => (p.batchB ?? true) ? `${z} * ${p.K * p.N}u + ` : "";
  return p.transB
    ? { name, index: (z, i, j) => `${off(z)}${j} * ${p.K}u + ${i}`, fast: "i", width: p.K }
    : { name, index: (z, i, j) => `${off(z)}${i} * ${p.N}u + ${j}`, fast: "j", width: p.N };
}

function dcView(p: MatmulParams, name = "dc"): View {
  return {
    name,
    index: (z, i, j) => `${z} * ${p.M * p.N}u + ${i} * ${p.N}u + ${j}`,
    fast: "j",
    width: p.N,
  };
}

/**
 * GEMM spec for lhs [M', K'] · rhs [K', N'] with the given views. With `foldBatch`, the batch
 * joins the reduction: k' = z * inner + k, and the GEMM itself has batch 1.
 */
function viewSpec(
  lhs: View,
  rhs: View,
  sizes: { M: number; N: number; K: number; batch: number },
  inputs: string[],
  foldBatch: boolean,
  precision?: GemmPrecision,
): GemmSpec {
  // A vec4 read covers 4 elements along the contiguous index; with a width that is a multiple
  // of 4 such a group never straddles a row or a batch entry and starts 16-byte aligned.
  const vec = (v: View, at: (z: string, i: string, j: string) => string) =>
    v.width % 4 === 0 ? { inputs: [v.name], at } : undefined;
  const common = {
    M: sizes.M,
    N: sizes.N,
    inputs,
    precision,
    aContiguous: lhs.fast === "j" ? "k" as const : "row" as const,
    bContiguous: rhs.fast === "j" ? "col" as const : "k" as const,
  };
  if (!foldBatch || sizes.batch === 1) {
    return {
      ...common,
      K: sizes.K,
      batch: sizes.batch,
      loadA: (row, k, z) => at(lhs, z, row, k),
      loadB: (k, col, z) => at(rhs, z, k, col),
      loadA4: vec(lhs, (row, k, z) => at4(lhs, z, row, k)),
      loadB4: vec(rhs, (k, col, z) => at4(rhs, z, k, col)),
    };
  }
  const zOf = (k: string) => `(${k} / ${sizes.K}u)`;
  const inner = (k: string) => `(${k} % ${sizes.K}u)`;
  return {
    ...common,
    K: sizes.K * sizes.batch,
    batch: 1,
    loadA: (row, k) => at(lhs, zOf(k), row, inner(k)),
    loadB: (k, col) => at(rhs, zOf(k), inner(k), col),
    loadA4: vec(lhs, (row, k) => at4(lhs, zOf(k), row, inner(k))),
    loadB4: vec(rhs, (k, col) => at4(rhs, zOf(k), inner(k), col)),
  };
}

/** GEMM spec of the forward product (inputs named a, b). */
export function matmulSpec(p: MatmulParams, epilogue?: Epilogue): GemmSpec {
  const sizes = { M: p.M, N: p.N, K: p.K, batch: p.batch ?? 1 };
  const spec = viewSpec(opA(p), opB(p), sizes, ["a", "b"], false, p.precision);
  return { ...spec, epilogue };
}

/** C = op(A) · op(B), row-major [batch, M, N]. */
export function matmul(
  g: Gpu,
  a: GPUBuffer,
  b: GPUBuffer,
  p: MatmulParams,
  config?: GemmConfig,
): GPUBuffer {
  return gemm(g, matmulSpec(p), [a, b], { config });
}

/** GEMM specs of dA (inputs dc, b) and dB (inputs a, dc); see `matmulBackward`. */
export function matmulBackwardSpecs(p: MatmulParams): { da: GemmSpec; db: GemmSpec } {
  if ((p.precision ?? "f32") !== "f32") {
    throw new Error(`matmul backward supports f32 only, got precision ${p.precision}`);
  }
  const batch = p.batch ?? 1;
  const A = opA(p), B = opB(p), dC = dcView(p);
  const foldA = !(p.batchA ?? true), foldB = !(p.batchB ?? true);
  // d op(A) [M, K] = dC · op(B)^T; stored transposed (as op(B) · dC^T) when transA.
  const da = p.transA
    ? viewSpec(B, transpose(dC), { M: p.K, N: p.M, K: p.N, batch }, ["dc", "b"], foldA)
    : viewSpec(dC, transpose(B), { M: p.M, N: p.K, K: p.N, batch }, ["dc", "b"], foldA);
  // d op(B) [K, N] = op(A)^T · dC; stored transposed (as dC^T · op(A)) when transB.
  const db = p.transB
    ? viewSpec(transpose(dC), A, { M: p.N, N: p.K, K: p.M, batch }, ["a", "dc"], foldB)
    : viewSpec(transpose(A), dC, { M: p.K, N: p.N, K: p.M, batch }, ["a", "dc"], foldB);
  return { da, db };
}

/**
 * Gradients of C = op(A) · op(B) given dC [batch, M, N]: dA and dB in the layouts of A and B
 * (transposed storage and shared operands respected; a shared operand's gradient is summed
 * over the batch). Two launches.
 */
export function matmulBackward(
  g: Gpu,
  a: GPUBuffer,
  b: GPUBuffer,
  dc: GPUBuffer,
  p: MatmulParams,
  config?: GemmConfig,
): { da: GPUBuffer; db: GPUBuffer } {
  const s = matmulBackwardSpecs(p);
  return {
    da: gemm(g, s.da, [dc, b], { config }),
    db: gemm(g, s.db, [a, dc], { config }),
  };
}

function cpuViews(p: MatmulParams) {
  const batchA = p.batchA ?? true, batchB = p.batchB ?? true;
  const ia = (z: number, m: number, k: number) =>
    (batchA ? z * p.M * p.K : 0) + (p.transA ? k * p.M + m : m * p.K + k);
  const ib = (z: number, k: number, n: number) =>
    (batchB ? z * p.K * p.N : 0) + (p.transB ? n * p.K + k : k * p.N + n);
  return { ia, ib };
}

/** f64 reference of `matmul`. */
export function matmulCpu(a: Float64Array, b: Float64Array, p: MatmulParams): Float64Array {
  const batch = p.batch ?? 1;
  const { ia, ib } = cpuViews(p);
  const c = new Float64Array(batch * p.M * p.N);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < p.M; m++) {
      for (let n = 0; n < p.N; n++) {
        let s = 0;
        for (let k = 0; k < p.K; k++) s += a[ia(z, m, k)] * b[ib(z, k, n)];
        c[(z * p.M + m) * p.N + n] = s;
      }
    }
  }
  return c;
}

/** f64 reference of `matmulBackward`. */
export function matmulBackwardCpu(
  a: Float64Array,
  b: Float64Array,
  dc: Float64Array,
  p: MatmulParams,
): { da: Float64Array; db: Float64Array } {
  const batch = p.batch ?? 1;
  const { ia, ib } = cpuViews(p);
  const da = new Float64Array(a.length);
  const db = new Float64Array(b.length);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < p.M; m++) {
      for (let n = 0; n < p.N; n++) {
        const d = dc[(z * p.M + m) * p.N + n];
        for (let k = 0; k < p.K; k++) {
          da[ia(z, m, k)] += d * b[ib(z, k, n)];
          db[ib(z, k, n)] += d * a[ia(z, m, k)];
        }
      }
    }
  }
  return { da, db };
}
