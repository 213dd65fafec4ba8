/**
 * BatchNorm2d on NHWC activations with PyTorch semantics.
 *
 * Training: per-channel batch mean and biased variance over R = N*H*W rows (Welford per thread,
 * Chan's parallel combination across threads, all f32), y = (x - mean) * invstd * gamma + beta
 * with invstd = 1 / sqrt(var + eps); running_mean/running_var are updated in place with
 * `momentum` and the unbiased variance var * R / (R - 1). Eval: the running statistics, with an
 * optional fused activation.
 *
 * For backward the caller keeps x, gamma and the `saved` buffer ([mean(C), invstd(C)]) returned by
 * the training forward; y is not needed. An activation that follows a training-mode BN is a
 * separate op and keeps what its own backward needs.
 *
 * Reductions use a barrier-free split: thread t = s*C + c (s < S) walks rows s, s+S, s+2S... of
 * channel c, so at every step the whole grid reads one contiguous run of x (coalesced, adjacent
 * threads on adjacent channels) and llvmpipe runs it without workgroup barriers; a second launch
 * with one thread per channel combines the S partials.
 *
 * Subgroup path (default where `useSubgroups` says so: adapters with subgroups that are not
 * software adapters; forced either way with `subgroups`): the second stage runs as
 * `columnReduceSubgroupWgsl` column reductions over the [S, C] partials (a workgroup per block of
 * up to 8 channels, the S partials spread over its invocations and combined by subgroup
 * operations) instead of one serial thread per channel. The backward sums are one such launch.
 * Chan's combination is split into two plain sums, each one launch: the mean as
 * sum(n_s * mean_s) / R, then M2 = sum(M2_s + n_s * (mean_s - mean)^2) with the deviations taken
 * around that mean, so no large sums of squares cancel (same stability as the serial Chan loop).
 * No atomics: the summation order is fixed for a given device and subgroup size.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, gridFor } from "../runtime/grid.ts";
import { columnReduceSubgroupWgsl, useSubgroups } from "./reduce.ts";

export interface BatchNormParams {
  N: number;
  H: number;
  W: number;
  C: number;
  /** Added to the variance before the square root (PyTorch default 1e-5). */
  eps?: number;
  /** Weight of the new batch statistic in the running estimates (PyTorch default 0.1). */
  momentum?: number;
  /** Row-splits of the reductions (default `bnSplits`); for tests and tuning. */
  splits?: number;
  /**
   * Force (true; throws on a device without subgroups) or rule out (false) the subgroup
   * combination of the split partials. Default `useSubgroups(g)`.
   */
  subgroups?: boolean;
}

export type BnActivation = "none" | "relu" | "relu6" | "silu";

export interface BatchNormEvalParams extends BatchNormParams {
  /** Applied after the affine transform (eval only). Default "none". */
  activation?: BnActivation;
}

const WG = 64;

function dims(p: BatchNormParams) {
  const R = p.N * p.H * p.W;
  if (!(R > 0 && p.C > 0)) throw new Error(`batchnorm: empty shape ${JSON.stringify(p)}`);
  return { R, C: p.C, eps: p.eps ?? 1e-5, momentum: p.momentum ?? 0.1 };
}

/** Number of row-splits S for a split reduction over R rows of C channels. */
export function bnSplits(R: number, C: number, fallback: boolean): number {
  const target = fallback ? 1024 : 32768;
  return Math.max(1, Math.min(R, 1024, Math.ceil(target / C)));
}

// ---------------------------------------------------------------------------------------------
// WGSL generators

/** Stage 1 of the statistics: per-(split, channel) Welford mean and M2 into part[2*S*C]. */
export function bnStatsPartialWgsl(R: number, C: number, S: number): string {
  const T = S * C;
  const grid = gridFor(T, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> part: array<f32>;
${entry1d(WG)} {
  let t = ${grid.index};
  if (t >= ${T}u) { return; }
  let c = t % ${C}u;
  let s = t / ${C}u;
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var r = s; r < ${R}u; r = r + ${S}u) {
    let v = x[r * ${C}u + c];
    n = n + 1.0;
    let d = v - mean;
    mean = mean + d / n;
    m2 = m2 + d * (v - mean);
  }
  part[t] = mean;
  part[${T}u + t] = m2;
}`;
}

/**
 * Stage 2 (one thread per channel): Chan's combination of the S partials, then the saved
 * [mean, invstd] and the in-place running-statistics update.
 */
export function bnStatsFinalWgsl(
  R: number,
  C: number,
  S: number,
  eps: number,
  momentum: number,
): string {
  const T = S * C;
  const grid = gridFor(C, WG);
  const unbias = R > 1 ? R / (R - 1) : 1;
  return `@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> saved: array<f32>;
@group(0) @binding(2) var<storage, read_write> rmean: array<f32>;
@group(0) @binding(3) var<storage, read_write> rvar: array<f32>;
${entry1d(WG)} {
  let c = ${grid.index};
  if (c >= ${C}u) { return; }
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var s = 0u; s < ${S}u; s = s + 1u) {
    let nb = f32((${R}u - 1u - s) / ${S}u + 1u);
    let mb = part[s * ${C}u + c];
    let tot = n + nb;
    let d = mb - mean;
    mean = mean + d * (nb / tot);
    m2 = m2 + part[${T}u + s * ${C}u + c] + d * d * (n * nb / tot);
    n = tot;
  }
  let v = m2 / ${f32lit(R)};
  saved[c] = mean;
  saved[${C}u + c] = 1.0 / sqrt(v + ${f32lit(eps)});
  let m = ${f32lit(momentum)};
  rmean[c] = (1.0 - m) * rmean[c] + m * mean;
  rvar[c] = (1.0 - m) * rvar[c] + m * (v * ${f32lit(unbias)});
}`;
}

/** Rows of split s of R rows cut into S strided splits, as a WGSL f32 expression. */
function splitCount(R: number, S: number, s: string): string {
  return `f32((${R}u - 1u - ${s}) / ${S}u + 1u)`;
}

/**
 * Subgroup stage 2, first launch: saved[c] = sum over s of n_s * mean_s, divided by R (a column
 * reduction of the [S, C] stage-1 means).
 */
export function bnStatsMeanSubgroupWgsl(
  R: number,
  C: number,
  S: number,
): { code: string; workgroups: [number, number, number] } {
  return columnReduceSubgroupWgsl({
    batches: 1,
    rows: S,
    cols: C,
    decls: `@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> saved: array<f32>;`,
    term: (i) => `${splitCount(R, S, `(${i}) / ${C}u`)} * partial[${i}]`,
    finish: (acc, t) => `saved[${t}] = ${acc} / ${f32lit(R)};`,
  });
}

/**
 * Subgroup stage 2, second launch: M2 = sum over s of M2_s + n_s * (mean_s - mean)^2 around the
 * mean of the first launch, then invstd and the in-place running-statistics update.
 */
export function bnStatsVarSubgroupWgsl(
  R: number,
  C: number,
  S: number,
  eps: number,
  momentum: number,
): { code: string; workgroups: [number, number, number] } {
  const T = S * C;
  const unbias = R > 1 ? R / (R - 1) : 1;
  return columnReduceSubgroupWgsl({
    batches: 1,
    rows: S,
    cols: C,
    decls: `@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> saved: array<f32>;
@group(0) @binding(2) var<storage, read_write> rmean: array<f32>;
@group(0) @binding(3) var<storage, read_write> rvar: array<f32>;
fn m2Term(i: u32) -> f32 {
  let d = partial[i] - saved[i % ${C}u];
  return partial[${T}u + i] + ${splitCount(R, S, `i / ${C}u`)} * d * d;
}`,
    term: (i) => `m2Term(${i})`,
    finish: (acc, t) =>
      `let v = ${acc} / ${f32lit(R)};
    let mean = saved[${t}];
    saved[${C}u + ${t}] = 1.0 / sqrt(v + ${f32lit(eps)});
    let m = ${f32lit(momentum)};
    rmean[${t}] = (1.0 - m) * rmean[${t}] + m * mean;
    rvar[${t}] = (1.0 - m) * rvar[${t}] + m * (v * ${f32lit(unbias)});`,
  });
}

/**
 * Subgroup backward stage 2: one column reduction over both [S, C] blocks of partials
 * (batch 0: sums of dy into dbeta, batch 1: sums of dy * xhat into dgamma).
 */
export function bnGradFinalSubgroupWgsl(
  C: number,
  S: number,
): { code: string; workgroups: [number, number, number] } {
  return columnReduceSubgroupWgsl({
    batches: 2,
    rows: S,
    cols: C,
    decls: `@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbeta: array<f32>;`,
    term: (i) => `partial[${i}]`,
    finish: (acc, t) =>
      `if (${t} < ${C}u) { dbeta[${t}] = ${acc}; } else { dgamma[${t} - ${C}u] = ${acc}; }`,
  });
}

function activationWgsl(a: BnActivation, v: string): string {
  switch (a) {
    case "none":
      return v;
    case "relu":
      return `max(${v}, 0.0)`;
    case "relu6":
      return `clamp(${v}, 0.0, 6.0)`;
    case "silu":
      return `(${v} / (1.0 + exp(-${v})))`;
  }
}

/** Training normalisation, one thread per element: y = (x - mean) * invstd * gamma + beta. */
export function bnApplyTrainWgsl(R: number, C: number): string {
  const total = R * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> saved: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  let c = i % ${C}u;
  y[i] = (x[i] - saved[c]) * saved[${C}u + c] * gamma[c] + beta[c];
}`;
}

/** Eval normalisation with running statistics and a fused activation, one thread per element. */
export function bnApplyEvalWgsl(R: number, C: number, eps: number, act: BnActivation): string {
  const total = R * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> rmean: array<f32>;
@group(0) @binding(4) var<storage, read> rvar: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  let c = i % ${C}u;
  let scale = gamma[c] / sqrt(rvar[c] + ${f32lit(eps)});
  let v = (x[i] - rmean[c]) * scale + beta[c];
  y[i] = ${activationWgsl(act, "v")};
}`;
}

/** Backward stage 1: per-(split, channel) sums of dy and dy * xhat into part[2*S*C]. */
export function bnGradPartialWgsl(R: number, C: number, S: number): string {
  const T = S * C;
  const grid = gridFor(T, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
${entry1d(WG)} {
  let t = ${grid.index};
  if (t >= ${T}u) { return; }
  let c = t % ${C}u;
  let s = t / ${C}u;
  let mean = saved[c];
  var sdy = 0.0;
  var sdyx = 0.0;
  for (var r = s; r < ${R}u; r = r + ${S}u) {
    let i = r * ${C}u + c;
    let d = dy[i];
    sdy = sdy + d;
    sdyx = sdyx + d * (x[i] - mean);
  }
  part[t] = sdy;
  part[${T}u + t] = sdyx * saved[${C}u + c];
}`;
}

/** Backward stage 2, one thread per channel: dbeta = sum dy, dgamma = sum dy * xhat. */
export function bnGradFinalWgsl(C: number, S: number): string {
  const T = S * C;
  const grid = gridFor(C, WG);
  return `@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbeta: array<f32>;
${entry1d(WG)} {
  let c = ${grid.index};
  if (c >= ${C}u) { return; }
  var sb = 0.0;
  var sg = 0.0;
  for (var s = 0u; s < ${S}u; s = s + 1u) {
    sb = sb + part[s * ${C}u + c];
    sg = sg + part[${T}u + s * ${C}u + c];
  }
  dbeta[c] = sb;
  dgamma[c] = sg;
}`;
}

/** Backward stage 3, one thread per element: dx = gamma*invstd*(dy - dbeta/R - xhat*dgamma/R). */
export function bnGradInputWgsl(R: number, C: number): string {
  const total = R * C;
  const grid = gridFor(total, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> saved: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read> dbeta: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${total}u) { return; }
  let c = i % ${C}u;
  let inv = saved[${C}u + c];
  let xhat = (x[i] - saved[c]) * inv;
  let invR = ${f32lit(1 / R)};
  dx[i] = gamma[c] * inv * (dy[i] - dbeta[c] * invR - xhat * dgamma[c] * invR);
}`;
}

// ---------------------------------------------------------------------------------------------
// Launches

/**
 * Training-mode forward. Updates `runningMean` and `runningVar` in place. Returns the output and
 * `saved` = [mean(C), invstd(C)] (2*C floats) for the backward. Throws when N*H*W is 1, like
 * PyTorch ("Expected more than 1 value per channel when training").
 */
export function batchNormTrain(
  g: Gpu,
  x: GPUBuffer,
  gamma: GPUBuffer,
  beta: GPUBuffer,
  runningMean: GPUBuffer,
  runningVar: GPUBuffer,
  p: BatchNormParams,
): { y: GPUBuffer; saved: GPUBuffer } {
  const { R, C, eps, momentum } = dims(p);
  if (R < 2) throw new Error("batchnorm: expected more than 1 value per channel when training");
  const S = Math.min(R, p.splits ?? bnSplits(R, C, g.info.isFallback));
  const part = g.pool.acquire(2 * S * C * 4);
  const saved = g.pool.acquire(2 * C * 4);
  const y = g.pool.acquire(R * C * 4);
  g.run(bnStatsPartialWgsl(R, C, S), [x, part], gridFor(S * C, WG).workgroups);
  if (useSubgroups(g, p.subgroups)) {
    const mean = bnStatsMeanSubgroupWgsl(R, C, S);
    g.run(mean.code, [part, saved], mean.workgroups);
    const v = bnStatsVarSubgroupWgsl(R, C, S, eps, momentum);
    g.run(v.code, [part, saved, runningMean, runningVar], v.workgroups);
  } else {
    g.run(
      bnStatsFinalWgsl(R, C, S, eps, momentum),
      [part, saved, runningMean, runningVar],
      gridFor(C, WG).workgroups,
    );
  }
  g.run(bnApplyTrainWgsl(R, C), [x, saved, gamma, beta, y], gridFor(R * C, WG).workgroups);
  g.pool.release(part);
  return { y, saved };
}

/** Eval-mode forward with the running statistics and an optional fused activation. */
export function batchNormEval(
  g: Gpu,
  x: GPUBuffer,
  gamma: GPUBuffer,
  beta: GPUBuffer,
  runningMean: GPUBuffer,
  runningVar: GPUBuffer,
  p: BatchNormEvalParams,
): GPUBuffer {
  const { R, C, eps } = dims(p);
  const y = g.pool.acquire(R * C * 4);
  g.run(
    bnApplyEvalWgsl(R, C, eps, p.activation ?? "none"),
    [x, gamma, beta, runningMean, runningVar, y],
    gridFor(R * C, WG).workgroups,
  );
  return y;
}

/** Training-mode backward from x, dy, gamma and the `saved` buffer of `batchNormTrain`. */
export function batchNormBackward(
  g: Gpu,
  x: GPUBuffer,
  dy: GPUBuffer,
  gamma: GPUBuffer,
  saved: GPUBuffer,
  p: BatchNormParams,
): { dx: GPUBuffer; dgamma: GPUBuffer; dbeta: GPUBuffer } {
  const { R, C } = dims(p);
  const S = Math.min(R, p.splits ?? bnSplits(R, C, g.info.isFallback));
  const part = g.pool.acquire(2 * S * C * 4);
  const dgamma = g.pool.acquire(C * 4);
  const dbeta = g.pool.acquire(C * 4);
  const dx = g.pool.acquire(R * C * 4);
  g.run(bnGradPartialWgsl(R, C, S), [x, dy, saved, part], gridFor(S * C, WG).workgroups);
  if (useSubgroups(g, p.subgroups)) {
    const fin = bnGradFinalSubgroupWgsl(C, S);
    g.run(fin.code, [part, dgamma, dbeta], fin.workgroups);
  } else {
    g.run(bnGradFinalWgsl(C, S), [part, dgamma, dbeta], gridFor(C, WG).workgroups);
  }
  g.run(
    bnGradInputWgsl(R, C),
    [x, dy, saved, gamma, dgamma, dbeta, dx],
    gridFor(R * C, WG).workgroups,
  );
  g.pool.release(part);
  return { dx, dgamma, dbeta };
}

// ---------------------------------------------------------------------------------------------
// f64 CPU references

/** Training forward in f64; returns new running statistics instead of mutating the inputs. */
export function batchNormTrainCpu(
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
  runningMean: Float64Array,
  runningVar: Float64Array,
  p: BatchNormParams,
): {
  y: Float64Array;
  mean: Float64Array;
  invstd: Float64Array;
  runningMean: Float64Array;
  runningVar: Float64Array;
} {
  const { R, C, eps, momentum } = dims(p);
  const mean = new Float64Array(C), varB = new Float64Array(C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) mean[c] += x[r * C + c];
  for (let c = 0; c < C; c++) mean[c] /= R;
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) varB[c] += (x[r * C + c] - mean[c]) ** 2;
  }
  for (let c = 0; c < C; c++) varB[c] /= R;
  const invstd = varB.map((v) => 1 / Math.sqrt(v + eps));
  const y = new Float64Array(R * C);
  for (let i = 0; i < R * C; i++) {
    const c = i % C;
    y[i] = (x[i] - mean[c]) * invstd[c] * gamma[c] + beta[c];
  }
  const unbias = R > 1 ? R / (R - 1) : 1;
  return {
    y,
    mean,
    invstd,
    runningMean: runningMean.map((m, c) => (1 - momentum) * m + momentum * mean[c]),
    runningVar: runningVar.map((v, c) => (1 - momentum) * v + momentum * varB[c] * unbias),
  };
}

function activationCpu(a: BnActivation, v: number): number {
  switch (a) {
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

/** Eval forward in f64. */
export function batchNormEvalCpu(
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
  runningMean: Float64Array,
  runningVar: Float64Array,
  p: BatchNormEvalParams,
): Float64Array {
  const { R, C, eps } = dims(p);
  const act = p.activation ?? "none";
  const y = new Float64Array(R * C);
  for (let i = 0; i < R * C; i++) {
    const c = i % C;
    const v = (x[i] - runningMean[c]) / Math.sqrt(runningVar[c] + eps) * gamma[c] + beta[c];
    y[i] = activationCpu(act, v);
  }
  return y;
}

/** Training backward in f64 from the saved batch mean and invstd. */
export function batchNormBackwardCpu(
  x: Float64Array,
  dy: Float64Array,
  gamma: Float64Array,
  mean: Float64Array,
  invstd: Float64Array,
  p: BatchNormParams,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { R, C } = dims(p);
  const dgamma = new Float64Array(C), dbeta = new Float64Array(C);
  for (let i = 0; i < R * C; i++) {
    const c = i % C;
    dbeta[c] += dy[i];
    dgamma[c] += dy[i] * (x[i] - mean[c]) * invstd[c];
  }
  const dx = new Float64Array(R * C);
  for (let i = 0; i < R * C; i++) {
    const c = i % C;
    const xhat = (x[i] - mean[c]) * invstd[c];
    dx[i] = gamma[c] * invstd[c] * (dy[i] - dbeta[c] / R - xhat * dgamma[c] / R);
  }
  return { dx, dgamma, dbeta };
}
