/** Differentiable log-softmax over the last axis and the fused softmax cross-entropy loss. */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as k from "../../kernels/ops/softmax.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";

function rowsCols(x: Tensor): [number, number] {
  const cols = x.shape.at(-1) ?? 1;
  return [x.size / cols, cols];
}

export function logSoftmax(x: Tensor): Tensor {
  const [rows, cols] = rowsCols(x);
  const out = fromBuffer(k.logSoftmax(gpu(), x.buffer, rows, cols), x.shape);
  return record(out, "logSoftmax", [x], (dy) => [
    fromBuffer(k.logSoftmaxBackward(gpu(), out.buffer, dy.buffer, rows, cols), x.shape),
  ]);
}

export interface CrossEntropyOptions {
  /** Per-class weights [C] (PyTorch's `weight`). */
  weights?: Tensor;
  labelSmoothing?: number;
}

/**
 * Mean cross-entropy of logits [N, C] against integer labels [N] (i32), with PyTorch's
 * semantics for class weights and label smoothing. Returns a scalar tensor.
 */
export function crossEntropy(
  logits: Tensor,
  labels: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  if (logits.rank !== 2) throw new Error(`crossEntropy needs logits [N, C], got [${logits.shape}]`);
  if (labels.dtype !== "i32" || labels.size !== logits.shape[0]) {
    throw new Error(`crossEntropy needs i32 labels [${logits.shape[0]}], got ${labels}`);
  }
  const p: k.CrossEntropyParams = {
    rows: logits.shape[0],
    classes: logits.shape[1],
    labelSmoothing: opts.labelSmoothing ?? 0,
  };
  const w = opts.weights?.buffer ?? null;
  // The kernel writes [loss, weight sum]; the tensor shows the loss, the backward reuses both.
  const out = fromBuffer(k.crossEntropy(gpu(), logits.buffer, labels.buffer, w, p), []);
  return record(out, "crossEntropy", [logits], (dy) => [
    fromBuffer(
      k.crossEntropyBackward(gpu(), logits.buffer, labels.buffer, w, out.buffer, dy.buffer, p),
      logits.shape,
    ),
  ]);
}
