/**
 * A very small CNN (two strided conv-BN-ReLU blocks, global average pool, linear head) for
 * tests and smoke runs: `--model tiny`. Not one of the study's models.
 */
import { Rng } from "../../core/data/rng.ts";
import { BatchNorm2d } from "../../core/nn/batchnorm2d.ts";
import { Conv2d } from "../../core/nn/conv2d.ts";
import { Linear } from "../../core/nn/linear.ts";
import { Module } from "../../core/nn/module.ts";
import { globalAvgPool } from "../../core/ops/pool.ts";
import type { Tensor } from "../../core/tensor.ts";

export class TinyNet extends Module {
  /** The head's state_dict prefix (as the study's models: skipped when loading a backbone). */
  readonly headPrefix = "fc.";
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly fc: Linear;

  constructor(opts: { numClasses?: number; seed?: number } = {}) {
    super();
    const rng = new Rng(opts.seed ?? 0);
    const init = { kaimingNormal: "fan_out" } as const;
    this.conv1 = this.child(
      "conv1",
      new Conv2d(3, 8, 3, { stride: 2, padding: 1, bias: false, init, rng }),
    );
    this.bn1 = this.child("bn1", new BatchNorm2d(8));
    this.conv2 = this.child(
      "conv2",
      new Conv2d(8, 16, 3, { stride: 2, padding: 1, bias: false, init, rng }),
    );
    this.bn2 = this.child("bn2", new BatchNorm2d(16));
    this.fc = this.child("fc", new Linear(16, opts.numClasses ?? 7, { rng }));
  }

  forward(x: Tensor): Tensor {
    const h1 = this.bn1.forward(this.conv1.forward(x), "relu");
    const h2 = this.bn2.forward(this.conv2.forward(h1), "relu");
    return this.fc.forward(globalAvgPool(h2));
  }
}
