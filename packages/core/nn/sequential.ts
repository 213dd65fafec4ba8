/**
 * nn.Sequential: children named "0", "1", ... (or given names, like an OrderedDict), applied
 * in order. A BatchNorm2d directly followed by a ReLU/ReLU6/SiLU runs as one fused op; at
 * inference (eval mode, no tape) on a real GPU a Conv2d -> BatchNorm2d (-> activation) runs as
 * one convolution with the BatchNorm folded into its weight and bias and the activation in its
 * epilogue. (On llvmpipe the refolding per call cost more than the saved pass: 116 -> 123 ms for
 * MobileNetV2 at batch 8, 64 px, so software adapters keep the separate BatchNorm.)
 */
import type { Tensor } from "../tensor.ts";
import { isGradEnabled } from "../autograd.ts";
import { gpu } from "../../kernels/runtime/gpu.ts";
import { Module } from "./module.ts";
import { BatchNorm2d } from "./batchnorm2d.ts";
import { Activation } from "./activation.ts";
import { Conv2d } from "./conv2d.ts";

type Fusable = "relu" | "relu6" | "silu";

function fusable(m: Module | undefined): Fusable | undefined {
  if (!(m instanceof Activation)) return undefined;
  return m.kind === "relu" || m.kind === "relu6" || m.kind === "silu" ? m.kind : undefined;
}

export class Sequential extends Module {
  /** Fold eval-mode BatchNorm into the preceding conv: "auto" = on real GPUs only. */
  static foldBatchNorm: boolean | "auto" = "auto";
  readonly layers: Module[];

  /** Modules named by position, or [name, module] pairs (PyTorch's OrderedDict form). */
  constructor(layers: (Module | null)[] | [string, Module][]) {
    super();
    this.layers = [];
    let i = 0;
    for (const entry of layers) {
      if (entry === null) continue;
      const [name, m] = Array.isArray(entry) ? entry : [String(i), entry];
      this.layers.push(this.child(name, m));
      i++;
    }
  }

  get length(): number {
    return this.layers.length;
  }

  at(i: number): Module {
    const m = this.layers.at(i);
    if (!m) throw new Error(`Sequential has no layer ${i}`);
    return m;
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (let i = 0; i < this.layers.length; i++) {
      const m = this.layers[i], next = this.layers[i + 1];
      if (
        m instanceof Conv2d && next instanceof BatchNorm2d && !next.training && !isGradEnabled() &&
        (Sequential.foldBatchNorm === "auto" ? !gpu().info.isFallback : Sequential.foldBatchNorm)
      ) {
        const activation = fusable(this.layers[i + 2]);
        const folded = next.foldInto(m.weight, m.bias);
        y = m.forward(y, { ...folded, activation });
        folded.weight.dispose();
        folded.bias.dispose();
        i += activation ? 2 : 1;
      } else if (m instanceof BatchNorm2d && fusable(next)) {
        y = m.forward(y, fusable(next));
        i++;
      } else {
        y = m.forward(y);
      }
    }
    return y;
  }
}
