/** Parameter initialisers matching PyTorch's defaults, drawn from a seeded generator. */
import type { Rng } from "../data/rng.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { numel } from "../../kernels/ops/shape.ts";

export function uniform(shape: number[], bound: number, rng: Rng): Tensor {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-bound, bound);
  return tensor(data, shape);
}

/** N(0, std^2) by Box-Muller. */
export function normal(shape: number[], std: number, rng: Rng): Tensor {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) {
    const u = 1 - rng.float(), v = rng.float();
    data[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return tensor(data, shape);
}
