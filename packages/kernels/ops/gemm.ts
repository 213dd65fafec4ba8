/**
 * GEMM code generation: C[z][M, N] = A[z][M, K] · B[z][K, N] (+ epilogue), where the way an
 * element of A or B is fetched is a WGSL expression supplied by the caller. Matmul (with
 * transposes and shared operands), implicit-GEMM convolution (im2col inside the A loader) and
 * their backward passes are all instances of this one generator.
 *
 * Two variants, both correct for any M, N, K >= 1 (loads clamp their row/column to the last
 * valid one and mask k >= K to zero, stores are bounds-checked):
 * - "shared" (real GPUs): a BM x BN tile per workgroup, K walked in BK steps through workgroup
 *   memory (A stored k-major as vec4 over rows, B as vec4 over columns), each thread owning
 *   TM x TN outputs as TM*TN/4 separate vec4 accumulators (never a private array: naga guards
 *   dynamically indexed private arrays, which cost ~10x on the H200). Thread outputs are
 *   interleaved by vec4 chunk so neighbouring threads read neighbouring shared-memory words
 *   and write neighbouring global words. Operands whose contiguous size is a multiple of 4
 *   and whose op gives a vec4 loader (`loadA4`/`loadB4`) are read 4 elements at a time from
 *   an `array<vec4<f32>>` view (along k: 4x4 blocks transposed into workgroup memory).
 * - "register" (software adapters such as llvmpipe): no workgroup memory and no barriers
 *   (barriers serialise llvmpipe's SIMD lanes into coroutines); each thread reads A and B
 *   straight from global memory and keeps TM x TN scalar accumulators, lanes along columns so
 *   B reads are contiguous and A reads are shared by the lanes of a row.
 *
 * With `precision: "f16-storage"` the inputs are f16 buffers converted to f32 on load
 * (`castF32ToF16` / `castF16ToF32` convert buffers); accumulation and output stay f32.
 *
 * Tiles are numbered linearly (column tiles fastest) and folded into a 2-D grid when there
 * are more than 65535 of them; the batch index is the grid's z.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, grid1d } from "../runtime/grid.ts";

export type Activation = "none" | "relu" | "relu6" | "silu";

/**
 * WGSL for `act(v)` on a value of WGSL type `type` (f32 or a vector of f32); `v` must be a
 * side-effect-free expression (it may be repeated).
 */
export function activationWgsl(act: Activation, v: string, type = "f32"): string {
  const lit = (x: string) => type === "f32" ? x : `${type}(${x})`;
  switch (act) {
    case "none":
      return v;
    case "relu":
      return `max(${v}, ${lit("0.0")})`;
    case "relu6":
      return `clamp(${v}, ${lit("0.0")}, ${lit("6.0")})`;
    case "silu":
      return `(${v} / (1.0 + exp(-(${v}))))`;
  }
}

/** f64 reference of an activation. */
export function activationCpu(act: Activation, v: number): number {
  switch (act) {
    case "none":
      return v;
    case "relu":
      return Math.max(v, 0);
    case "relu6":
      return Math.min(Math.max(v, 0), 6);
    case "silu":
      return v / (1 + Math.exp(-v));
  }
}

/**
 * Derivative of an activation, from the pre-activation `z` (all) or the output `y`
 * (relu and relu6 only: y > 0, resp. 0 < y < 6; silu needs z).
 */
export function activationGradCpu(act: Activation, z: number): number {
  switch (act) {
    case "none":
      return 1;
    case "relu":
      return z > 0 ? 1 : 0;
    case "relu6":
      return z > 0 && z < 6 ? 1 : 0;
    case "silu": {
      const s = 1 / (1 + Math.exp(-z));
      return s * (1 + z * (1 - s));
    }
  }
}

/**
 * What happens to each accumulated value v = sum_k A·B before it is stored:
 * `y = act(v + bias[biasIndex(col, z)] + residual[storeIndex(row, col, z)])`, then
 * `out = y`, or `out = out + y` with `accumulate`.
 */
export interface Epilogue {
  /** Adds a bias buffer (bound after the inputs). */
  bias?: boolean;
  /** WGSL u32 index into the bias for column `col` of batch `z` (default `col`). */
  biasIndex?: (col: string, z: string) => string;
  activation?: Activation;
  /** Adds a residual buffer laid out like the output (bound after the bias). */
  residual?: boolean;
  /** Adds into the existing contents of the output buffer (which the caller passes in). */
  accumulate?: boolean;
}

export type GemmPrecision = "f32" | "f16-storage";

/** A vec4 loader: the input buffers it reads and its WGSL expression (see `GemmSpec.loadA4`). */
export interface VecLoader {
  inputs: string[];
  at: (i: string, j: string, z: string) => string;
}

export interface GemmSpec {
  M: number;
  N: number;
  K: number;
  /** Independent problems, one per grid z (default 1). */
  batch?: number;
  /** Names of the read-only `array<f32>` input buffers, bound first in this order. */
  inputs: string[];
  /** WGSL declarations (constants, helper functions) that the loader expressions use. */
  prelude?: string;
  /**
   * WGSL f32 expression for A[row, k] of batch z, given u32 WGSL expressions. Only called with
   * row < M and k < K (out-of-range rows are clamped, out-of-range k are masked to zero).
   */
  loadA: (row: string, k: string, z: string) => string;
  /** WGSL f32 expression for B[k, col] of batch z; only called with k < K, col < N. */
  loadB: (k: string, col: string, z: string) => string;
  /** Which index of A is contiguous in memory (decides the coalesced load order); default "k". */
  aContiguous?: "k" | "row";
  /** Which index of B is contiguous in memory; default "col". */
  bContiguous?: "col" | "k";
  /**
   * Optional vec4 loader of A for the "shared" variant: a WGSL vec4 expression for the 4
   * elements A[row, k..k+3] (`aContiguous` "k", `row` any, `k` a multiple of 4) or
   * A[row..row+3, k] (`aContiguous` "row", `row` a multiple of 4) of batch z. Used when the
   * contiguous dimension (K, resp. M) is a multiple of 4 (and BK too for "k"); the buffers
   * named in `inputs` are then declared as arrays of vec4 (indexed in units of 4 elements), so
   * only this loader may read them. Otherwise `loadA` is used with scalar declarations.
   */
  loadA4?: VecLoader;
  /** Optional vec4 loader of B: B[k..k+3, col] ("k") or B[k, col..col+3] ("col"); see loadA4. */
  loadB4?: VecLoader;
  /**
   * "f16-storage": every buffer in `inputs` holds f16 (`enable f16;`, `array<f16>` or
   * `array<vec4<f16>>`); loaded values are converted to f32, accumulation, bias, residual and
   * output stay f32. Needs the adapter's `shader-f16`. Default "f32".
   */
  precision?: GemmPrecision;
  /** WGSL u32 output index of C[row, col] in batch z; default `z*M*N + row*N + col`. */
  storeIndex?: (row: string, col: string, z: string) => string;
  epilogue?: Epilogue;
}

export interface GemmConfig {
  variant: "shared" | "register";
  /** Output tile of one workgroup. */
  BM: number;
  BN: number;
  /** K step: the workgroup-memory depth ("shared") or the unroll factor ("register"). */
  BK: number;
  /** Outputs per thread: the workgroup is (BN/TN) x (BM/TM) threads. */
  TM: number;
  TN: number;
}

/** 128x128 tiles, 8x8 per thread, 16 KiB of workgroup memory: large problems on real GPUs. */
export const GEMM_SHARED_LARGE: GemmConfig = {
  variant: "shared",
  BM: 128,
  BN: 128,
  BK: 16,
  TM: 8,
  TN: 8,
};
/** 64x64 tiles, 4x4 per thread: medium problems on real GPUs. */
export const GEMM_SHARED_MEDIUM: GemmConfig = {
  variant: "shared",
  BM: 64,
  BN: 64,
  BK: 16,
  TM: 4,
  TN: 4,
};
/** 32x32 tiles, 4x4 per thread (64 threads): small problems on real GPUs. */
export const GEMM_SHARED_SMALL: GemmConfig = {
  variant: "shared",
  BM: 32,
  BN: 32,
  BK: 16,
  TM: 4,
  TN: 4,
};
/**
 * Barrier-free register tiling for software adapters: 8x8 threads of 8x4 outputs. On llvmpipe
 * (2 cores, 512^3) this measured ~7.5 GFLOP/s vs ~3.6 for 32x32 tiles of 4x4 (informal).
 */
export const GEMM_REGISTER: GemmConfig = {
  variant: "register",
  BM: 64,
  BN: 32,
  BK: 2,
  TM: 8,
  TN: 4,
};
/** Register tiling for small problems on software adapters (less clamped, wasted work). */
export const GEMM_REGISTER_SMALL: GemmConfig = {
  variant: "register",
  BM: 32,
  BN: 16,
  BK: 2,
  TM: 4,
  TN: 2,
};

/**
 * The tile config for a problem on this adapter: the register variant on software adapters,
 * otherwise the largest shared-memory tile that still gives the GPU enough workgroups.
 */
/** Register tiles for software adapters, 8x8 per invocation (benches/tune_gemm.ts: 1.29x). */
const GEMM_REGISTER_WIDE: GemmConfig = { variant: "register", BM: 64, BN: 64, BK: 2, TM: 8, TN: 8 };
const GEMM_REGISTER_NARROW_M: GemmConfig = {
  variant: "register",
  BM: 32,
  BN: 64,
  BK: 2,
  TM: 4,
  TN: 8,
};

export function chooseGemmConfig(g: Gpu, M: number, N: number, batch = 1): GemmConfig {
  if (g.info.isFallback) {
    // Chosen by A/B timing over the four models' GEMMs on llvmpipe (benches/results/gemm-ab-*).
    if (M >= 64 && N >= 64) return GEMM_REGISTER_WIDE;
    if (M >= 64 && N >= 16) return GEMM_REGISTER;
    if (N >= 64) return GEMM_REGISTER_NARROW_M;
    return GEMM_REGISTER_SMALL;
  }
  const tiles = (c: GemmConfig) => Math.ceil(M / c.BM) * Math.ceil(N / c.BN) * batch;
  const fits = (c: GemmConfig) => 4 * c.BK * (c.BM + c.BN) <= g.info.maxWorkgroupStorageSize;
  if (fits(GEMM_SHARED_LARGE) && tiles(GEMM_SHARED_LARGE) >= 256) return GEMM_SHARED_LARGE;
  if (tiles(GEMM_SHARED_MEDIUM) >= 128) return GEMM_SHARED_MEDIUM;
  return GEMM_SHARED_SMALL;
}

function checkConfig(c: GemmConfig): void {
  const ok = c.BM % c.TM === 0 && c.BN % c.TN === 0 && c.BK >= 1 &&
    (c.variant === "register" || (c.TM % 4 === 0 && c.TN % 4 === 0));
  const threads = (c.BM / c.TM) * (c.BN / c.TN);
  if (!ok || threads > 256 || threads < 1) {
    throw new Error(`invalid GEMM config ${JSON.stringify(c)}`);
  }
}

interface Parts {
  decls: string;
  storeIndex: (row: string, col: string, z: string) => string;
  store: (row: string, col: string, z: string, v: string) => string;
  tiles: { m: number; n: number };
  grid: ReturnType<typeof grid1d>;
}

/** Which operands the shared variant loads with vec4 reads (see `GemmSpec.loadA4`). */
function vec4Use(s: GemmSpec, c: GemmConfig): { a: boolean; b: boolean } {
  if (c.variant !== "shared") return { a: false, b: false };
  const kOk = c.BK % 4 === 0 && s.K % 4 === 0;
  return {
    a: Boolean(s.loadA4) && ((s.aContiguous ?? "k") === "k" ? kOk : s.M % 4 === 0),
    b: Boolean(s.loadB4) && ((s.bContiguous ?? "col") === "k" ? kOk : s.N % 4 === 0),
  };
}

function parts(s: GemmSpec, c: GemmConfig, vec4Inputs = new Set<string>()): Parts {
  const e = s.epilogue ?? {};
  const f16 = s.precision === "f16-storage";
  const batch = s.batch ?? 1;
  if (s.M < 1 || s.N < 1 || s.K < 1 || batch < 1) {
    throw new Error(`GEMM sizes must be >= 1 (M=${s.M}, N=${s.N}, K=${s.K}, batch=${batch})`);
  }
  if (batch > 65535) throw new Error(`GEMM batch ${batch} exceeds 65535`);
  let binding = 0;
  const scalar = f16 ? "f16" : "f32";
  const decls = s.inputs.map((name) => {
    const type = vec4Inputs.has(name) ? `vec4<${scalar}>` : scalar;
    return `@group(0) @binding(${binding++}) var<storage, read> ${name}: array<${type}>;`;
  });
  if (e.bias) decls.push(`@group(0) @binding(${binding++}) var<storage, read> g_bias: array<f32>;`);
  if (e.residual) {
    decls.push(`@group(0) @binding(${binding++}) var<storage, read> g_res: array<f32>;`);
  }
  decls.push(`@group(0) @binding(${binding++}) var<storage, read_write> g_out: array<f32>;`);
  const storeIndex = s.storeIndex ??
    ((row: string, col: string, z: string) => `(${z} * ${s.M * s.N}u + ${row} * GN + ${col})`);
  const biasIndex = e.biasIndex ?? ((col: string) => col);
  const store = (row: string, col: string, z: string, v: string) => {
    const lines = [`let oi = ${storeIndex(row, col, z)};`, `var v = ${v};`];
    if (e.bias) lines.push(`v += g_bias[${biasIndex(col, z)}];`);
    if (e.residual) lines.push(`v += g_res[oi];`);
    const act = e.activation ?? "none";
    if (act !== "none") lines.push(`v = ${activationWgsl(act, "v")};`);
    lines.push(e.accumulate ? `g_out[oi] = g_out[oi] + v;` : `g_out[oi] = v;`);
    return lines.join(" ");
  };
  const tiles = { m: Math.ceil(s.M / c.BM), n: Math.ceil(s.N / c.BN) };
  const grid = grid1d(tiles.m * tiles.n, 1);
  grid.workgroups[2] = batch;
  const header = [
    ...(f16 ? ["enable f16;"] : []),
    `const GM = ${s.M}u;`,
    `const GN = ${s.N}u;`,
    `const GK = ${s.K}u;`,
    ...decls,
    s.prelude ?? "",
  ].join("\n");
  return { decls: header, storeIndex, store, tiles, grid };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A loaded value (or vec4 with `vec`) as f32: converted from f16 with f16 storage. */
const toF32 = (s: GemmSpec, v: string, vec = false) =>
  s.precision === "f16-storage" ? `${vec ? "vec4<f32>" : "f32"}(${v})` : v;

/** WGSL source of a GEMM with the given loaders, epilogue and tile config. */
export function gemmWgsl(s: GemmSpec, c: GemmConfig): string {
  checkConfig(c);
  return c.variant === "register" ? registerWgsl(s, c) : sharedWgsl(s, c);
}

function registerWgsl(s: GemmSpec, c: GemmConfig): string {
  const p = parts(s, c);
  const WX = c.BN / c.TN, WY = c.BM / c.TM;
  const U = Math.min(c.BK, s.K);
  const rows = range(c.TM), cols = range(c.TN);
  const body: string[] = [];
  body.push(`let tile = ${p.grid.group};`);
  body.push(`if (tile >= ${p.tiles.m * p.tiles.n}u) { return; }`);
  body.push(`let z = wid.z;`);
  body.push(`let row0 = (tile / ${p.tiles.n}u) * ${c.BM}u + lid.y;`);
  body.push(`let col0 = (tile % ${p.tiles.n}u) * ${c.BN}u + lid.x;`);
  // Clamped indices: loads always stay in range, the stores are masked instead.
  for (const i of rows) body.push(`let r${i} = min(row0 + ${i * WY}u, GM - 1u);`);
  for (const j of cols) body.push(`let c${j} = min(col0 + ${j * WX}u, GN - 1u);`);
  for (const i of rows) for (const j of cols) body.push(`var acc_${i}_${j} = 0.0;`);
  const step = (k: string) => {
    const out: string[] = [];
    for (const i of rows) out.push(`let a${i} = ${toF32(s, s.loadA(`r${i}`, k, "z"))};`);
    for (const j of cols) out.push(`let b${j} = ${toF32(s, s.loadB(k, `c${j}`, "z"))};`);
    for (const i of rows) {
      for (const j of cols) out.push(`acc_${i}_${j} = acc_${i}_${j} + a${i} * b${j};`);
    }
    return out.map((l) => "    " + l).join("\n");
  };
  const main = Math.floor(s.K / U) * U;
  if (main > 0) {
    body.push(`for (var k0 = 0u; k0 < ${main}u; k0 = k0 + ${U}u) {`);
    for (let u = 0; u < U; u++) {
      body.push(`  {\n    let k = k0 + ${u}u;\n${step("k")}\n  }`);
    }
    body.push(`}`);
  }
  for (let k = main; k < s.K; k++) body.push(`{\n${step(`${k}u`)}\n}`);
  for (const i of rows) {
    for (const j of cols) {
      const row = `(row0 + ${i * WY}u)`, col = `(col0 + ${j * WX}u)`;
      body.push(
        `if (${row} < GM && ${col} < GN) { ${p.store(row, col, "z", `acc_${i}_${j}`)} }`,
      );
    }
  }
  return `${p.decls}
@compute @workgroup_size(${WX}, ${WY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${body.map((l) => "  " + l).join("\n")}
}
`;
}

function sharedWgsl(s: GemmSpec, c: GemmConfig): string {
  const use = vec4Use(s, c);
  const vec4Inputs = new Set([
    ...(use.a ? s.loadA4!.inputs : []),
    ...(use.b ? s.loadB4!.inputs : []),
  ]);
  const p = parts(s, c, vec4Inputs);
  const WX = c.BN / c.TN, WY = c.BM / c.TM, T = WX * WY;
  const BM4 = c.BM / 4, BN4 = c.BN / 4, TM4 = c.TM / 4, TN4 = c.TN / 4;
  const kTiles = Math.ceil(s.K / c.BK);
  const kExact = s.K % c.BK === 0;
  const body: string[] = [];
  body.push(`let tile = ${p.grid.group};`);
  body.push(`if (tile >= ${p.tiles.m * p.tiles.n}u) { return; }`);
  body.push(`let z = wid.z;`);
  body.push(`let tx = lid.x;`);
  body.push(`let ty = lid.y;`);
  body.push(`let t = ty * ${WX}u + tx;`);
  body.push(`let rowBase = (tile / ${p.tiles.n}u) * ${c.BM}u;`);
  body.push(`let colBase = (tile % ${p.tiles.n}u) * ${c.BN}u;`);
  for (let i = 0; i < c.TM; i++) {
    for (let j = 0; j < TN4; j++) body.push(`var acc_${i}_${j} = vec4<f32>(0.0);`);
  }
  // Loader: each unit fills one vec4 of sA (4 consecutive rows at one k) or sB (4 consecutive
  // columns), or with vec4 loads along k a 4x4 block (4 vec4 reads transposed into 4 vec4
  // stores). Units are numbered along the operand's contiguous index so that neighbouring
  // threads read neighbouring memory.
  const loadUnits = (units: number, lines: string[]) => {
    const out: string[] = [];
    for (let r = 0; r < Math.ceil(units / T); r++) {
      const guard = (r + 1) * T > units;
      out.push(`${guard ? `if (t + ${r * T}u < ${units}u) ` : ""}{`);
      out.push(`  let u = t + ${r * T}u;`);
      for (const l of lines) out.push(`  ${l}`);
      out.push(`}`);
    }
    return out;
  };
  const kMask = (v: string) => kExact ? v : `select(0.0, ${v}, gk < GK)`;
  const kMask4 = (v: string) => kExact ? v : `select(vec4<f32>(0.0), ${v}, gk < GK)`;
  const kIdx = kExact ? "gk" : "min(gk, GK - 1u)";
  // With vec4 reads along k, K % 4 == 0: a group of 4 k is wholly in or out of range.
  const kIdx4 = kExact ? "gk" : "min(gk, GK - 4u)";
  const BK4 = c.BK / 4;
  /** 4 vec4 reads v0..v3 (one per row/column e), stored transposed as 4 vec4 at k0+4*k4+e. */
  const block = (read: (e: number) => string, target: (e: number) => string) => [
    ...range(4).map((e) => `let v${e} = ${kMask4(read(e))};`),
    ...range(4).map((e) =>
      `${target(e)} = vec4<f32>(${range(4).map((q) => `v${q}.${"xyzw"[e]}`).join(", ")});`
    ),
  ];
  const ldA = (r: string, k: string) => toF32(s, s.loadA(r, k, "z"));
  const ldB = (k: string, col: string) => toF32(s, s.loadB(k, col, "z"));
  const ldA4 = (r: string, k: string) => toF32(s, s.loadA4!.at(r, k, "z"), true);
  const ldB4 = (k: string, col: string) => toF32(s, s.loadB4!.at(k, col, "z"), true);
  const aRows = range(4).map((e) => `let ar${e} = min(rowBase + m4 * 4u + ${e}u, GM - 1u);`);
  const bCols = range(4).map((e) => `let bc${e} = min(colBase + n4 * 4u + ${e}u, GN - 1u);`);
  const loop: string[] = [];
  if ((s.aContiguous ?? "k") === "k" && use.a) {
    loop.push(...loadUnits(BM4 * BK4, [
      `let k4 = u % ${BK4}u;`,
      `let m4 = u / ${BK4}u;`,
      `let gk = k0 + k4 * 4u;`,
      ...aRows,
      ...block((e) => ldA4(`ar${e}`, kIdx4), (e) => `sA[(k4 * 4u + ${e}u) * ${BM4}u + m4]`),
    ]));
  } else if (use.a) {
    loop.push(...loadUnits(BM4 * c.BK, [
      `let m4 = u % ${BM4}u;`,
      `let kk = u / ${BM4}u;`,
      `let gk = k0 + kk;`,
      `let ar = min(rowBase + m4 * 4u, GM - 4u);`,
      `sA[kk * ${BM4}u + m4] = ${kMask4(ldA4("ar", kIdx))};`,
    ]));
  } else {
    const decomp = (s.aContiguous ?? "k") === "k"
      ? [`let kk = u % ${c.BK}u;`, `let m4 = u / ${c.BK}u;`]
      : [`let m4 = u % ${BM4}u;`, `let kk = u / ${BM4}u;`];
    loop.push(...loadUnits(BM4 * c.BK, [
      ...decomp,
      `let gk = k0 + kk;`,
      ...aRows,
      `sA[kk * ${BM4}u + m4] = vec4<f32>(${
        range(4).map((e) => kMask(ldA(`ar${e}`, kIdx))).join(", ")
      });`,
    ]));
  }
  if ((s.bContiguous ?? "col") === "k" && use.b) {
    loop.push(...loadUnits(BN4 * BK4, [
      `let k4 = u % ${BK4}u;`,
      `let n4 = u / ${BK4}u;`,
      `let gk = k0 + k4 * 4u;`,
      ...bCols,
      ...block((e) => ldB4(kIdx4, `bc${e}`), (e) => `sB[(k4 * 4u + ${e}u) * ${BN4}u + n4]`),
    ]));
  } else if (use.b) {
    loop.push(...loadUnits(BN4 * c.BK, [
      `let n4 = u % ${BN4}u;`,
      `let kk = u / ${BN4}u;`,
      `let gk = k0 + kk;`,
      `let bc = min(colBase + n4 * 4u, GN - 4u);`,
      `sB[kk * ${BN4}u + n4] = ${kMask4(ldB4(kIdx, "bc"))};`,
    ]));
  } else {
    const decomp = (s.bContiguous ?? "col") === "col"
      ? [`let n4 = u % ${BN4}u;`, `let kk = u / ${BN4}u;`]
      : [`let kk = u % ${c.BK}u;`, `let n4 = u / ${c.BK}u;`];
    loop.push(...loadUnits(BN4 * c.BK, [
      ...decomp,
      `let gk = k0 + kk;`,
      ...bCols,
      `sB[kk * ${BN4}u + n4] = vec4<f32>(${
        range(4).map((e) => kMask(ldB(kIdx, `bc${e}`))).join(", ")
      });`,
    ]));
  }
  loop.push(`workgroupBarrier();`);
  for (let kk = 0; kk < c.BK; kk++) {
    loop.push(`{`);
    for (let i = 0; i < TM4; i++) {
      loop.push(`  let a${i} = sA[${kk * BM4}u + ${i * WY}u + ty];`);
    }
    for (let j = 0; j < TN4; j++) {
      loop.push(`  let b${j} = sB[${kk * BN4}u + ${j * WX}u + tx];`);
    }
    for (let i = 0; i < TM4; i++) {
      for (let r = 0; r < 4; r++) {
        for (let j = 0; j < TN4; j++) {
          const acc = `acc_${i * 4 + r}_${j}`;
          loop.push(`  ${acc} = ${acc} + a${i}.${"xyzw"[r]} * b${j};`);
        }
      }
    }
    loop.push(`}`);
  }
  loop.push(`workgroupBarrier();`);
  body.push(`for (var kt = 0u; kt < ${kTiles}u; kt = kt + 1u) {`);
  body.push(`  let k0 = kt * ${c.BK}u;`);
  body.push(...loop.map((l) => "  " + l));
  body.push(`}`);
  for (let i = 0; i < TM4; i++) {
    for (let r = 0; r < 4; r++) {
      const row = `(rowBase + ${(i * WY) * 4 + r}u + ty * 4u)`;
      for (let j = 0; j < TN4; j++) {
        for (let e = 0; e < 4; e++) {
          const col = `(colBase + ${j * WX * 4 + e}u + tx * 4u)`;
          const v = `acc_${i * 4 + r}_${j}.${"xyzw"[e]}`;
          body.push(`if (${row} < GM && ${col} < GN) { ${p.store(row, col, "z", v)} }`);
        }
      }
    }
  }
  return `${p.decls}
var<workgroup> sA: array<vec4<f32>, ${BM4 * c.BK}>;
var<workgroup> sB: array<vec4<f32>, ${BN4 * c.BK}>;
@compute @workgroup_size(${WX}, ${WY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${body.map((l) => "  " + l).join("\n")}
}
`;
}

/** Dispatch geometry of a GEMM (for benchmarks and callers that record their own dispatch). */
export function gemmWorkgroups(s: GemmSpec, c: GemmConfig): [number, number, number] {
  return parts(s, c).grid.workgroups;
}

export interface GemmLaunch {
  /** Tile config; default `chooseGemmConfig` for this adapter and size. */
  config?: GemmConfig;
  /** Output buffer to write (required with `epilogue.accumulate`); default a new pooled one. */
  out?: GPUBuffer;
  /** Output elements to allocate when `out` is not given; default batch*M*N. */
  outElements?: number;
}

/**
 * Records a GEMM. `buffers` are the inputs in `spec.inputs` order, then the bias and the
 * residual buffers if the epilogue uses them. Returns the output buffer.
 */
export function gemm(
  g: Gpu,
  spec: GemmSpec,
  buffers: GPUBuffer[],
  launch: GemmLaunch = {},
): GPUBuffer {
  const e = spec.epilogue ?? {};
  const expected = spec.inputs.length + (e.bias ? 1 : 0) + (e.residual ? 1 : 0);
  if (buffers.length !== expected) {
    throw new Error(`GEMM expects ${expected} input buffers, got ${buffers.length}`);
  }
  if (e.accumulate && !launch.out) throw new Error("an accumulating GEMM needs `out`");
  if (spec.precision === "f16-storage" && !g.info.f16) {
    throw new Error(`f16 storage needs the shader-f16 feature, which ${g.info.name} lacks`);
  }
  const batch = spec.batch ?? 1;
  const config = launch.config ?? chooseGemmConfig(g, spec.M, spec.N, batch);
  const code = gemmWgsl(spec, config);
  const out = launch.out ??
    g.pool.acquire(4 * (launch.outElements ?? batch * spec.M * spec.N));
  g.run(code, [...buffers, out], gemmWorkgroups(spec, config));
  return out;
}

const CAST_WG = 256;

/**
 * f16 copy of the first `n` f32 values of `src` (2 values packed per u32 word with
 * `pack2x16float`, so it needs no `shader-f16`): the input of an "f16-storage" GEMM. Values
 * beyond the f16 range give an indeterminate result (WGSL), and rounding of values between two
 * f16 neighbours may go either way (WGSL leaves it to the implementation).
 */
export function castF32ToF16(g: Gpu, src: GPUBuffer, n: number): GPUBuffer {
  if (!(n >= 1)) throw new Error(`cast needs n >= 1, got ${n}`);
  const words = Math.ceil(n / 2);
  const grid = grid1d(Math.ceil(words / CAST_WG), CAST_WG);
  const code = `@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
${entry1d(CAST_WG)} {
  let i = ${grid.index};
  if (i >= ${words}u) { return; }
  let hi = select(0.0, src[min(2u * i + 1u, ${n - 1}u)], 2u * i + 1u < ${n}u);
  dst[i] = pack2x16float(vec2<f32>(src[2u * i], hi));
}
`;
  const out = g.pool.acquire(4 * words);
  g.run(code, [src, out], grid.workgroups);
  return out;
}

/** f32 copy of the first `n` f16 values of `src` (exact). */
export function castF16ToF32(g: Gpu, src: GPUBuffer, n: number): GPUBuffer {
  if (!(n >= 1)) throw new Error(`cast needs n >= 1, got ${n}`);
  const words = Math.ceil(n / 2);
  const grid = grid1d(Math.ceil(words / CAST_WG), CAST_WG);
  const code = `@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
${entry1d(CAST_WG)} {
  let i = ${grid.index};
  if (i >= ${words}u) { return; }
  let v = unpack2x16float(src[i]);
  dst[2u * i] = v.x;
  if (2u * i + 1u < ${n}u) { dst[2u * i + 1u] = v.y; }
}
`;
  const out = g.pool.acquire(4 * n);
  g.run(code, [src, out], grid.workgroups);
  return out;
}
