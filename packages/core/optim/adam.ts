/** torch.optim.Adam and AdamW, with PyTorch's defaults. */
import { gpu } from "../../kernels/runtime/gpu.ts";
import { type AdamParams, adamStepScalars, adamUpdate } from "../../kernels/ops/optim.ts";
import type { Tensor } from "../tensor.ts";
import { Optimizer } from "./optimizer.ts";

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class Adam extends Optimizer {
  readonly hp: AdamParams;

  constructor(params: Tensor[], opts: AdamOptions = {}, decoupled = false) {
    super(params, opts.lr ?? 1e-3, 2);
    const [beta1, beta2] = opts.betas ?? [0.9, 0.999];
    this.hp = {
      beta1,
      beta2,
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? (decoupled ? 1e-2 : 0),
      decoupled,
    };
  }

  protected update(params: Tensor[]): void {
    const hyper = this.hyper(adamStepScalars(this.lr, this.hp, this.steps));
    for (const p of params) {
      const [m, v] = this.slots(p);
      adamUpdate(gpu(), p.buffer, p.grad!.buffer, m.buffer, v.buffer, hyper, p.size, this.hp);
    }
  }
}

/** Adam with decoupled weight decay (default 0.01), as torch.optim.AdamW. */
export class AdamW extends Adam {
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super(params, opts, true);
  }
}
