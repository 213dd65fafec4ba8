/** torch.optim.SGD with momentum, dampening, Nesterov and weight decay. */
import { gpu } from "../../kernels/runtime/gpu.ts";
import { type SgdParams, sgdStepScalars, sgdUpdate } from "../../kernels/ops/optim.ts";
import type { Tensor } from "../tensor.ts";
import { Optimizer } from "./optimizer.ts";

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  readonly hp: SgdParams;

  constructor(params: Tensor[], opts: SgdOptions) {
    const hp = {
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      weightDecay: opts.weightDecay ?? 0,
      nesterov: opts.nesterov ?? false,
    };
    if (hp.nesterov && (hp.momentum <= 0 || hp.dampening !== 0)) {
      throw new Error("Nesterov momentum requires a momentum and zero dampening");
    }
    super(params, opts.lr, hp.momentum !== 0 ? 1 : 0);
    this.hp = hp;
  }

  protected update(params: Tensor[]): void {
    // Momentum buffers start as the first gradient: one scalar buffer for new parameters.
    const later = this.hyper(sgdStepScalars(this.lr, false), 0);
    const first = params.some((p) => !this.state.has(p))
      ? this.hyper(sgdStepScalars(this.lr, true), 1)
      : later;
    for (const p of params) {
      const hyper = this.state.has(p) || this.hp.momentum === 0 ? later : first;
      const buf = this.hp.momentum !== 0 ? this.slots(p)[0].buffer : null;
      sgdUpdate(gpu(), p.buffer, p.grad!.buffer, buf, hyper, p.size, this.hp);
    }
  }
}
