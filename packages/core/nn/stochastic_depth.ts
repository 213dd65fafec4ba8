/**
 * torchvision.ops.StochasticDepth in "row" mode: in training each sample of the batch is
 * dropped (zeroed) with probability p and kept samples are scaled by 1/(1-p). The per-sample
 * mask [N, 1, 1, 1] is drawn on the CPU from (seed, call count) and multiplied in with
 * broadcasting, so it is differentiable and reproducible. Identity in eval mode or with p = 0.
 */
import { mixSeed, Rng } from "../data/rng.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { mul } from "../ops/elementwise.ts";
import { Module } from "./module.ts";

/** The row mask for `n` samples: 0 (dropped) or 1/(1-p) (kept). */
export function stochasticDepthMask(n: number, p: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const survival = 1 - p;
  return new Float32Array(n).map(() => (rng.float() < survival ? 1 / survival : 0));
}

export class StochasticDepth extends Module {
  /** Training calls so far: masks derive from (seed, calls); checkpoints save and restore it. */
  calls = 0;
  readonly seed: number;

  constructor(readonly p: number, opts: { seed?: number } = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`stochastic depth p must be in [0, 1), got ${p}`);
    this.seed = opts.seed ?? 0;
  }

  /** x [N, ...] -> x * mask[N, 1, ...]. */
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const n = x.shape[0];
    const mask = stochasticDepthMask(n, this.p, mixSeed(this.seed, this.calls++));
    const m = tensor(mask, [n, ...x.shape.slice(1).map(() => 1)]);
    return mul(x, m);
  }
}
