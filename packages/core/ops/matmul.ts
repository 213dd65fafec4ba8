/** Differentiable (batched) matrix product with optional transposed operands. */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as k from "../../kernels/ops/matmul.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/**
 * a [.., M, K] · b [.., K, N] (or their transposes). A 2-D operand is shared across the
 * other's batch; two batched operands must have the same batch size.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul needs matrices, got ${a} and ${b}`);
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [K2, N] = transB ? [bc, br] : [br, bc];
  if (K !== K2) throw new Error(`matmul inner sizes differ: ${a} · ${b}`);
  const batchA = a.size / (ar * ac), batchB = b.size / (br * bc);
  if (a.rank > 2 && b.rank > 2 && batchA !== batchB) {
    throw new Error(`matmul batch sizes differ: ${a} · ${b}`);
  }
  const batch = Math.max(batchA, batchB);
  const params: k.MatmulParams = {
    M,
    N,
    K,
    batch,
    transA,
    transB,
    batchA: a.rank > 2,
    batchB: b.rank > 2,
  };
  const lead = (a.rank > 2 ? a : b).shape.slice(0, -2);
  const out = fromBuffer(k.matmul(gpu(), a.buffer, b.buffer, params), [...lead, M, N]);
  return record(out, "matmul", [a, b], (dy) => {
    const { da, db } = k.matmulBackward(gpu(), a.buffer, b.buffer, dy.buffer, params);
    return [fromBuffer(da, a.shape), fromBuffer(db, b.shape)];
  });
}
