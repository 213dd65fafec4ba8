/** Softmax and cross-entropy on the CPU, accumulated in f64. */
import { checkLabels, checkNumClasses, checkProbsLabels } from "./validate.ts";

/** Smallest probability used inside `log` by {@link meanCrossEntropy} (as sklearn's old log_loss). */
export const PROB_EPSILON = 1e-15;

/**
 * Row-wise softmax of `logits` (N x C, row-major), computed in f64 with the max subtracted,
 * returned as f32 probabilities.
 */
export function softmax(logits: ArrayLike<number>, numClasses: number): Float32Array {
  checkNumClasses(numClasses);
  if (logits.length % numClasses !== 0) {
    throw new RangeError(`logits length ${logits.length} is not a multiple of ${numClasses}`);
  }
  const out = new Float32Array(logits.length);
  const row = new Float64Array(numClasses);
  for (let base = 0; base < logits.length; base += numClasses) {
    let max = -Infinity;
    for (let c = 0; c < numClasses; c++) max = Math.max(max, logits[base + c]);
    let sum = 0;
    for (let c = 0; c < numClasses; c++) {
      row[c] = Math.exp(logits[base + c] - max);
      sum += row[c];
    }
    for (let c = 0; c < numClasses; c++) out[base + c] = row[c] / sum;
  }
  return out;
}

/** Mean of `-log p[label]` over rows, with p clipped below at {@link PROB_EPSILON}. */
export function meanCrossEntropy(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number {
  const n = checkProbsLabels(probs, labels, numClasses);
  if (n === 0) throw new RangeError("cross-entropy of an empty set");
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum -= Math.log(Math.max(probs[i * numClasses + labels[i]], PROB_EPSILON));
  }
  return sum / n;
}

/**
 * Mean cross-entropy straight from logits (log-sum-exp in f64), as PyTorch's
 * `F.cross_entropy(logits, labels)` with mean reduction: no clipping needed.
 */
export function crossEntropyFromLogits(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number {
  checkLabels(labels, numClasses);
  const n = labels.length;
  if (logits.length !== n * numClasses) {
    throw new RangeError(`logits has ${logits.length} values, expected ${n * numClasses}`);
  }
  if (n === 0) throw new RangeError("cross-entropy of an empty set");
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const base = i * numClasses;
    let max = -Infinity;
    for (let c = 0; c < numClasses; c++) max = Math.max(max, logits[base + c]);
    let s = 0;
    for (let c = 0; c < numClasses; c++) s += Math.exp(logits[base + c] - max);
    sum += max + Math.log(s) - logits[base + labels[i]];
  }
  return sum / n;
}
