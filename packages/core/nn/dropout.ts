/**
 * nn.Dropout, seeded: each training forward draws a fresh mask from (seed, call count), so a
 * run is reproducible; identity in eval mode or when p is 0.
 */
import { mixSeed } from "../data/rng.ts";
import type { Tensor } from "../tensor.ts";
import { dropout } from "../ops/dropout.ts";
import { Module } from "./module.ts";

export class Dropout extends Module {
  /** Training calls so far: masks derive from (seed, calls); checkpoints save and restore it. */
  calls = 0;
  readonly seed: number;

  constructor(readonly p = 0.5, opts: { seed?: number } = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout probability must be in [0, 1), got ${p}`);
    this.seed = opts.seed ?? 0;
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, mixSeed(this.seed, this.calls++) | 0);
  }
}
