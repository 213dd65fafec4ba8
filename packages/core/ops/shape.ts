/** Differentiable shape ops: reshape (no copy) and broadcasting expand. */
import { gpu } from "../../kernels/runtime/gpu.ts";
import { broadcastTo } from "../../kernels/ops/elementwise.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";
import { sumTo } from "./reduce.ts";

/** Same data, new shape (one dimension may be -1). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  return record(x.view(resolved), "reshape", [x], (dy) => [dy.view(x.shape)]);
}

/** Broadcasts x to `shape` (a copy), optionally scaled: the adjoint of sumTo. */
export function expand(x: Tensor, shape: readonly number[], scale = 1): Tensor {
  const out = fromBuffer(broadcastTo(gpu(), x.buffer, [...x.shape], [...shape], scale), shape);
  return record(out, "expand", [x], (dy) => {
    const s = sumTo(dy, x.shape);
    if (scale === 1) return [s];
    const k = expand(s, s.shape, scale);
    s.dispose();
    return [k];
  });
}
