/** nn.Linear: y = x W^T + b, weight [out, in] as in PyTorch. */
import { Rng } from "../data/rng.ts";
import type { Tensor } from "../tensor.ts";
import { matmul } from "../ops/matmul.ts";
import { add } from "../ops/elementwise.ts";
import { Module } from "./module.ts";
import { uniform } from "./init.ts";

export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: {
    bias?: boolean;
    rng?: Rng;
  } = {}) {
    super();
    const rng = opts.rng ?? new Rng(0);
    // kaiming_uniform_(a=sqrt(5)) reduces to U(-1/sqrt(in), 1/sqrt(in)); the bias too.
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param("weight", uniform([outFeatures, inFeatures], bound, rng));
    this.bias = opts.bias === false ? null : this.param("bias", uniform([outFeatures], bound, rng));
  }

  protected override onTensorReplaced(name: string, t: Tensor): void {
    if (name === "weight") this.weight = t;
    if (name === "bias") this.bias = t;
  }

  forward(x: Tensor): Tensor {
    const y = matmul(x, this.weight, { transB: true });
    if (!this.bias) return y;
    const out = add(y, this.bias);
    return out;
  }
}
