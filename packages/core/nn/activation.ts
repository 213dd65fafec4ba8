/**
 * Parameter-free activation modules (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Sigmoid, nn.Identity).
 * They hold a place in a Sequential so the numeric child names match PyTorch's.
 */
import type { Tensor } from "../tensor.ts";
import { relu, relu6, sigmoid, silu } from "../ops/elementwise.ts";
import { Module } from "./module.ts";

export type ActivationName = "relu" | "relu6" | "silu" | "sigmoid" | "identity";

const FNS: Record<ActivationName, (x: Tensor) => Tensor> = {
  relu,
  relu6,
  silu,
  sigmoid,
  identity: (x) => x,
};

export class Activation extends Module {
  constructor(readonly kind: ActivationName) {
    super();
  }

  forward(x: Tensor): Tensor {
    return FNS[this.kind](x);
  }
}

export const ReLU = (): Activation => new Activation("relu");
export const ReLU6 = (): Activation => new Activation("relu6");
export const SiLU = (): Activation => new Activation("silu");
export const Sigmoid = (): Activation => new Activation("sigmoid");
export const Identity = (): Activation => new Activation("identity");
