/**
 * Differentiable BatchNorm2d over NHWC with PyTorch semantics. Training mode normalises with
 * the batch statistics and updates the running estimates in place; eval mode uses the running
 * estimates (and can fuse the following activation when no gradient is recorded).
 */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as k from "../../kernels/ops/batchnorm.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { isGradEnabled, record } from "../autograd.ts";
import { add, addScalar, div, mul, relu, relu6, silu, sqrt, sub } from "./elementwise.ts";

export interface BatchNormState {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
  momentum: number;
}

export function batchNorm2d(
  x: Tensor,
  s: BatchNormState,
  training: boolean,
  activation: k.BnActivation = "none",
): Tensor {
  if (x.rank !== 4) throw new Error(`batchNorm2d needs NHWC input, got ${x}`);
  const [N, H, W, C] = x.shape;
  if (s.weight.size !== C) throw new Error(`batchNorm2d: ${C} channels, weight ${s.weight}`);
  const p: k.BatchNormParams = { N, H, W, C, eps: s.eps, momentum: s.momentum };
  const g = gpu();
  const onTape = isGradEnabled() && [x, s.weight, s.bias].some((t) => t.requiresGrad);
  if (!training) {
    if (!onTape) {
      const y = k.batchNormEval(
        g,
        x.buffer,
        s.weight.buffer,
        s.bias.buffer,
        s.runningMean.buffer,
        s.runningVar.buffer,
        { ...p, activation },
      );
      return fromBuffer(y, x.shape);
    }
    // Eval mode with gradients (frozen statistics): an affine map built from recorded ops.
    const scale = div(s.weight, sqrt(addScalar(s.runningVar, s.eps)));
    const shift = sub(s.bias, mul(s.runningMean, scale));
    return activate(add(mul(x, scale), shift), activation);
  }
  const { y, saved } = k.batchNormTrain(
    g,
    x.buffer,
    s.weight.buffer,
    s.bias.buffer,
    s.runningMean.buffer,
    s.runningVar.buffer,
    p,
  );
  const savedT = fromBuffer(saved, [2, C]);
  const out = record(fromBuffer(y, x.shape), "batchNorm2d", [x, s.weight, s.bias], (dy) => {
    const r = k.batchNormBackward(g, x.buffer, dy.buffer, s.weight.buffer, savedT.buffer, p);
    return [fromBuffer(r.dx, x.shape), fromBuffer(r.dgamma, [C]), fromBuffer(r.dbeta, [C])];
  });
  if (!out.node) savedT.dispose();
  return activate(out, activation);
}

function activate(y: Tensor, a: k.BnActivation): Tensor {
  return a === "none" ? y : a === "relu" ? relu(y) : a === "relu6" ? relu6(y) : silu(y);
}
