/** Expected calibration error and reliability-diagram bins on the top-class probability. */
import { argmaxRows } from "./confusion.ts";
import { checkProbsLabels } from "./validate.ts";

/** Number of equal-width confidence bins used by default (Guo et al. 2017 used 15). */
export const ECE_BINS = 15;

/** One reliability-diagram bin, covering confidences in (lower, upper] ([0, upper] for bin 0). */
export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  /** Mean top-class probability of the rows in the bin; null when the bin is empty. */
  meanConfidence: number | null;
  /** Fraction of the rows in the bin whose argmax is the label; null when empty. */
  accuracy: number | null;
}

/** ECE and its bins. */
export interface Calibration {
  /** Sum over bins of (count / N) * |accuracy - meanConfidence|. */
  ece: number;
  numBins: number;
  bins: ReliabilityBin[];
}

/** Bin of a confidence in [0, 1]: the b with b/B < conf <= (b+1)/B, and 0 for conf = 0. */
export function confidenceBin(conf: number, numBins: number): number {
  let b = Math.ceil(conf * numBins) - 1;
  // Correct rounding of conf * numBins so the bin edges are exactly b / numBins.
  if (b >= 0 && conf <= b / numBins) b--;
  if (conf > (b + 1) / numBins) b++;
  return Math.min(numBins - 1, Math.max(0, b));
}

/**
 * Expected calibration error with `numBins` equal-width bins on the max probability of each
 * row of `probs` (N x C), a prediction being correct when its argmax equals the label.
 */
export function expectedCalibrationError(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
  numBins = ECE_BINS,
): Calibration {
  const n = checkProbsLabels(probs, labels, numClasses);
  if (!Number.isInteger(numBins) || numBins < 1) throw new RangeError("numBins must be >= 1");
  if (n === 0) throw new RangeError("calibration of an empty set");
  const pred = argmaxRows(probs, numClasses);
  const count = new Float64Array(numBins);
  const confSum = new Float64Array(numBins);
  const correct = new Float64Array(numBins);
  for (let i = 0; i < n; i++) {
    const conf = probs[i * numClasses + pred[i]];
    const b = confidenceBin(conf, numBins);
    count[b]++;
    confSum[b] += conf;
    if (pred[i] === labels[i]) correct[b]++;
  }
  let ece = 0;
  const bins: ReliabilityBin[] = [];
  for (let b = 0; b < numBins; b++) {
    const bin: ReliabilityBin = {
      lower: b / numBins,
      upper: (b + 1) / numBins,
      count: count[b],
      meanConfidence: null,
      accuracy: null,
    };
    if (count[b] > 0) {
      bin.meanConfidence = confSum[b] / count[b];
      bin.accuracy = correct[b] / count[b];
      ece += (count[b] / n) * Math.abs(bin.accuracy - bin.meanConfidence);
    }
    bins.push(bin);
  }
  return { ece, numBins, bins };
}

/** Multiclass Brier score: mean over rows of sum_c (p_c - [c = label])^2. */
export function brierScore(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number {
  const n = checkProbsLabels(probs, labels, numClasses);
  if (n === 0) throw new RangeError("Brier score of an empty set");
  let s = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < numClasses; c++) {
      const d = probs[i * numClasses + c] - (labels[i] === c ? 1 : 0);
      s += d * d;
    }
  }
  return s / n;
}
