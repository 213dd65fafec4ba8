/**
 * torchvision.ops.SqueezeExcitation: global average pool -> fc1 (1x1 conv) -> activation ->
 * fc2 (1x1 conv) -> sigmoid -> per-channel scale of the input. Keys fc1.*, fc2.* as in
 * torchvision.
 */
import type { Tensor } from "../tensor.ts";
import { globalAvgPool } from "../ops/pool.ts";
import { reshape } from "../ops/shape.ts";
import { sigmoid } from "../ops/elementwise.ts";
import { channelScale } from "../ops/structure.ts";
import { Conv2d, type ConvInit } from "./conv2d.ts";
import { Module } from "./module.ts";
import type { Rng } from "../data/rng.ts";

export class SqueezeExcitation extends Module {
  readonly fc1: Conv2d;
  readonly fc2: Conv2d;
  readonly activation: "relu" | "silu";

  constructor(
    inputChannels: number,
    squeezeChannels: number,
    opts: { activation?: "relu" | "silu"; init?: ConvInit; rng?: Rng } = {},
  ) {
    super();
    const o = { init: opts.init, rng: opts.rng };
    this.fc1 = this.child("fc1", new Conv2d(inputChannels, squeezeChannels, 1, o));
    this.fc2 = this.child("fc2", new Conv2d(squeezeChannels, inputChannels, 1, o));
    this.activation = opts.activation ?? "relu";
  }

  /** x [N, H, W, C] -> x * sigmoid(fc2(act(fc1(mean_hw(x))))). */
  forward(x: Tensor): Tensor {
    const [N, , , C] = x.shape;
    const pooled = reshape(globalAvgPool(x), [N, 1, 1, C]);
    const h = this.fc1.forward(pooled, { activation: this.activation });
    const s = sigmoid(this.fc2.forward(h));
    return channelScale(x, reshape(s, [N, C]));
  }
}
