/**
 * In-place optimizer updates with PyTorch semantics (torch.optim.Adam, AdamW, SGD).
 * Hyperparameters fixed for a run (betas, eps, weight decay, momentum) are baked into the
 * source; the per-step scalars (learning rate, bias corrections, first-step flag) come from
 * a small buffer written once per step, so schedulers never force a recompile.
 * One invocation per parameter element.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, gridFor } from "../runtime/grid.ts";

const WG = 256;

export interface AdamParams {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: decay the weights directly instead of adding wd * p to the gradient. */
  decoupled: boolean;
  amsgrad?: false;
}

/** The per-step scalars: [lr, 1 - beta1^t, 1 - beta2^t]. */
export function adamStepScalars(lr: number, p: AdamParams, t: number): Float32Array {
  return new Float32Array([lr, 1 - p.beta1 ** t, 1 - p.beta2 ** t]);
}

export function adamWgsl(n: number, p: AdamParams): string {
  const grid = gridFor(n, WG);
  const wd = f32lit(p.weightDecay);
  return `@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  let lr = hyper[0];
  var w = param[i];
  var gr = grad[i];
  ${p.weightDecay === 0 ? "" : p.decoupled ? `w = w * (1.0 - lr * ${wd});` : `gr = gr + ${wd} * w;`}
  let mi = ${f32lit(p.beta1)} * m[i] + ${f32lit(1 - p.beta1)} * gr;
  let vi = ${f32lit(p.beta2)} * v[i] + ${f32lit(1 - p.beta2)} * gr * gr;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / sqrt(hyper[2]) + ${f32lit(p.eps)};
  param[i] = w - (lr / hyper[1]) * mi / denom;
}`;
}

export function adamUpdate(
  g: Gpu,
  param: GPUBuffer,
  grad: GPUBuffer,
  m: GPUBuffer,
  v: GPUBuffer,
  hyper: GPUBuffer,
  n: number,
  p: AdamParams,
): void {
  g.run(adamWgsl(n, p), [grad, hyper, param, m, v], gridFor(n, WG).workgroups);
}

/** One Adam/AdamW step on CPU (f64), mutating param, m and v. */
export function adamCpu(
  param: Float64Array,
  grad: Float64Array,
  m: Float64Array,
  v: Float64Array,
  lr: number,
  t: number,
  p: AdamParams,
): void {
  const bc1 = 1 - p.beta1 ** t, bc2 = 1 - p.beta2 ** t;
  for (let i = 0; i < param.length; i++) {
    let w = param[i], gr = grad[i];
    if (p.weightDecay !== 0) {
      if (p.decoupled) w *= 1 - lr * p.weightDecay;
      else gr += p.weightDecay * w;
    }
    m[i] = p.beta1 * m[i] + (1 - p.beta1) * gr;
    v[i] = p.beta2 * v[i] + (1 - p.beta2) * gr * gr;
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + p.eps;
    param[i] = w - (lr / bc1) * m[i] / denom;
  }
}

export interface SgdParams {
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** The per-step scalars: [lr, 1 on the first step (momentum buffer starts as the gradient)]. */
export function sgdStepScalars(lr: number, first: boolean): Float32Array {
  return new Float32Array([lr, first ? 1 : 0]);
}

export function sgdWgsl(n: number, p: SgdParams): string {
  const grid = gridFor(n, WG);
  const hasMomentum = p.momentum !== 0;
  return `@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
${hasMomentum ? "@group(0) @binding(3) var<storage, read_write> buf: array<f32>;" : ""}
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  let w = param[i];
  var d = grad[i]${p.weightDecay === 0 ? "" : ` + ${f32lit(p.weightDecay)} * w`};
  ${
    hasMomentum
      ? `let b = select(${f32lit(p.momentum)} * buf[i] + ${
        f32lit(1 - p.dampening)
      } * d, d, hyper[1] > 0.5);
  buf[i] = b;
  d = ${p.nesterov ? `d + ${f32lit(p.momentum)} * b` : "b"};`
      : "let unused = hyper[1];"
  }
  param[i] = w - hyper[0] * d;
}`;
}

export function sgdUpdate(
  g: Gpu,
  param: GPUBuffer,
  grad: GPUBuffer,
  momentumBuf: GPUBuffer | null,
  hyper: GPUBuffer,
  n: number,
  p: SgdParams,
): void {
  const buffers = [grad, hyper, param];
  if (p.momentum !== 0) {
    if (!momentumBuf) throw new Error("SGD with momentum needs a momentum buffer");
    buffers.push(momentumBuf);
  }
  g.run(sgdWgsl(n, p), buffers, gridFor(n, WG).workgroups);
}

export function sgdCpu(
  param: Float64Array,
  grad: Float64Array,
  buf: Float64Array,
  lr: number,
  first: boolean,
  p: SgdParams,
): void {
  for (let i = 0; i < param.length; i++) {
    let d = grad[i] + p.weightDecay * param[i];
    if (p.momentum !== 0) {
      buf[i] = first ? d : p.momentum * buf[i] + (1 - p.dampening) * d;
      d = p.nesterov ? d + p.momentum * buf[i] : buf[i];
    }
    param[i] -= lr * d;
  }
}
