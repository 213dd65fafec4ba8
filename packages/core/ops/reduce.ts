/** Differentiable reductions: sum and mean over axes, and sumTo (the adjoint of broadcasting). */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as k from "../../kernels/ops/reduce.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";
import { numel } from "../../kernels/ops/shape.ts";
import { expand } from "./shape.ts";

function normAxes(x: Tensor, axes?: number | number[]): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  return (Array.isArray(axes) ? axes : [axes]).map((a) => (a < 0 ? a + x.rank : a));
}

function reduce(x: Tensor, axes: number[], keepDims: boolean, scale: number, op: string): Tensor {
  const shape = k.reduceShape([...x.shape], axes, keepDims);
  const out = fromBuffer(k.sum(gpu(), x.buffer, [...x.shape], axes, scale), shape);
  return record(out, op, [x], (dy) => {
    const v = dy.view(k.reduceShape([...x.shape], axes, true));
    const g = expand(v, x.shape, scale);
    v.dispose();
    return [g];
  });
}

/** Sum over `axes` (all axes when omitted). */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  return reduce(x, normAxes(x, axes), keepDims, 1, "sum");
}

/** Mean over `axes` (all axes when omitted). */
export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normAxes(x, axes);
  const count = numel(ax.map((a) => x.shape[a]));
  return reduce(x, ax, keepDims, 1 / count, "mean");
}

/**
 * Sums `x` down to `shape` (the axes that broadcasting added or stretched). Returns a new
 * handle even when nothing needs summing. With `consume`, x is disposed (it was a temporary).
 */
export function sumTo(x: Tensor, shape: readonly number[], consume = false): Tensor {
  const off = x.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    if (i < off || (shape[i - off] === 1 && x.shape[i] !== 1)) axes.push(i);
  }
  let out: Tensor;
  if (axes.length) {
    const s = sum(x, axes, true);
    out = s.view(shape);
    s.dispose();
  } else {
    out = x.view(shape);
  }
  if (consume) x.dispose();
  return out;
}
