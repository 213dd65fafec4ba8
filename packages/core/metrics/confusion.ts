/** Predictions (argmax) and the confusion matrix. */
import { checkLabels, checkNumClasses, checkProbsLabels } from "./validate.ts";

/** Row-wise argmax of N x C scores; ties go to the lowest class index (as numpy.argmax). */
export function argmaxRows(probs: ArrayLike<number>, numClasses: number): Int32Array {
  checkNumClasses(numClasses);
  if (probs.length % numClasses !== 0) {
    throw new RangeError(`scores length ${probs.length} is not a multiple of ${numClasses}`);
  }
  const n = probs.length / numClasses;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * numClasses;
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (probs[base + c] > probs[base + best]) best = c;
    out[i] = best;
  }
  return out;
}

/**
 * C x C confusion matrix: `m[t][p]` counts rows whose true class is t and predicted class is p
 * (rows = truth, columns = prediction, as sklearn's `confusion_matrix`).
 */
export function confusionMatrixFromPredictions(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (predictions.length !== labels.length) {
    throw new RangeError(`${predictions.length} predictions but ${labels.length} labels`);
  }
  checkLabels(labels, numClasses);
  checkLabels(predictions, numClasses);
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]][predictions[i]]++;
  return m;
}

/** Confusion matrix of the argmax of `probs` (N x C) against `labels`. */
export function confusionMatrix(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number[][] {
  checkProbsLabels(probs, labels, numClasses);
  return confusionMatrixFromPredictions(argmaxRows(probs, numClasses), labels, numClasses);
}
