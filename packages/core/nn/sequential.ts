/**
 * nn.Sequential: children named "0", "1", ... (or given names, like an OrderedDict), applied
 * in order. A BatchNorm2d directly followed by a ReLU/ReLU6/SiLU runs as one fused op.
 */
import type { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";
import { BatchNorm2d } from "./batchnorm2d.ts";
import { Activation } from "./activation.ts";

export class Sequential extends Module {
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
        m instanceof BatchNorm2d && next instanceof Activation &&
        (next.kind === "relu" || next.kind === "relu6" || next.kind === "silu")
      ) {
        y = m.forward(y, next.kind);
        i++;
      } else {
        y = m.forward(y);
      }
    }
    return y;
  }
}
