/** Differentiable seeded dropout. */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as k from "../../kernels/ops/dropout.ts";
import { fromBuffer, type Tensor, tensor } from "../tensor.ts";
import { record } from "../autograd.ts";

/**
 * Zeroes each element with probability p and scales the rest by 1/(1-p); the same seed gives
 * the same mask. Identity when p is 0.
 */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
  if (p === 0) return record(x.view(), "dropout", [x], (dy) => [dy.view()]);
  const s = tensor(new Int32Array([seed | 0]));
  const out = fromBuffer(k.dropout(gpu(), x.buffer, s.buffer, x.size, p), x.shape);
  return record(out, "dropout", [x], (dy) => {
    const dx = fromBuffer(k.dropout(gpu(), dy.buffer, s.buffer, x.size, p), x.shape);
    return [dx];
  });
}
