/**
 * nn.BatchNorm2d with PyTorch's names: parameters `weight` (ones) and `bias` (zeros), buffers
 * `running_mean`, `running_var` and `num_batches_tracked` (an i32 scalar, counted on the GPU so
 * training forwards never wait on the CPU). Training mode normalises with batch statistics and
 * updates the running estimates; eval mode uses the running estimates.
 */
import { gpu } from "../../kernels/runtime/gpu.ts";
import type { BnActivation } from "../../kernels/ops/batchnorm.ts";
import { ones, type Tensor, tensor, zeros } from "../tensor.ts";
import { batchNorm2d } from "../ops/batchnorm.ts";
import { add, addScalar, div, mul, neg, sqrt, sub } from "../ops/elementwise.ts";
import { tidy } from "../scope.ts";
import { Module } from "./module.ts";

export interface BatchNorm2dOptions {
  eps?: number;
  momentum?: number;
}

const INCREMENT = `@group(0) @binding(0) var<storage, read_write> n: array<i32>;
@compute @workgroup_size(1)
fn main() { n[0] = n[0] + 1; }`;

export class BatchNorm2d extends Module {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  numBatchesTracked: Tensor;
  readonly eps: number;
  readonly momentum: number;

  constructor(readonly numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = this.param("weight", ones([numFeatures]));
    this.bias = this.param("bias", zeros([numFeatures]));
    this.runningMean = this.buffer("running_mean", zeros([numFeatures]));
    this.runningVar = this.buffer("running_var", ones([numFeatures]));
    this.numBatchesTracked = this.buffer("num_batches_tracked", tensor(new Int32Array(1), []));
  }

  protected override onTensorReplaced(name: string, t: Tensor): void {
    if (name === "weight") this.weight = t;
    else if (name === "bias") this.bias = t;
    else if (name === "running_mean") this.runningMean = t;
    else if (name === "running_var") this.runningVar = t;
    else if (name === "num_batches_tracked") this.numBatchesTracked = t;
  }

  /** x [N, H, W, C]; `activation` is applied after the affine map (fused in eval mode). */
  forward(x: Tensor, activation: BnActivation = "none"): Tensor {
    if (this.training) gpu().run(INCREMENT, [this.numBatchesTracked.buffer], [1, 1, 1]);
    return batchNorm2d(
      x,
      {
        weight: this.weight,
        bias: this.bias,
        runningMean: this.runningMean,
        runningVar: this.runningVar,
        eps: this.eps,
        momentum: this.momentum,
      },
      this.training,
      activation,
    );
  }

  /**
   * The eval-mode affine map folded into the preceding convolution's weight (HWIO, Cout last)
   * and bias: w * s and (b - mean) * s + beta with s = gamma / sqrt(var + eps). Inference only.
   */
  foldInto(weight: Tensor, bias: Tensor | null): { weight: Tensor; bias: Tensor } {
    return tidy(() => {
      const s = div(this.weight, sqrt(addScalar(this.runningVar, this.eps)));
      const centred = bias ? sub(bias, this.runningMean) : neg(this.runningMean);
      return { weight: mul(weight, s), bias: add(mul(centred, s), this.bias) };
    });
  }
}
