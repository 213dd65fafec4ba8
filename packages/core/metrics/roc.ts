/**
 * ROC curves and AUC. Tied scores form one threshold, so the curve moves diagonally across
 * them and the trapezoid rule gives each tied positive/negative pair half credit, exactly as
 * sklearn's `roc_curve` + `auc` (and `roc_auc_score`).
 */
import { checkProbsLabels } from "./validate.ts";

/** Full ROC curve: one point per distinct threshold, starting at (0, 0). */
export interface RocPoints {
  fpr: number[];
  tpr: number[];
  /** Score threshold of each point (`Infinity` for the first point). */
  thresholds: number[];
  positives: number;
  negatives: number;
}

/** Default maximum number of points kept for plotting by {@link thinCurve}. */
export const ROC_PLOT_POINTS = 200;

/**
 * ROC curve of `scores` for the binary truth `positive` (non-zero = positive class).
 * With no positives (or no negatives) the corresponding rate is NaN.
 */
export function rocCurve(scores: ArrayLike<number>, positive: ArrayLike<number>): RocPoints {
  if (scores.length !== positive.length) {
    throw new RangeError(`${scores.length} scores but ${positive.length} truth values`);
  }
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < n; i++) if (positive[i]) positives++;
  const negatives = n - positives;
  const fp: number[] = [0];
  const tp: number[] = [0];
  const thresholds: number[] = [Infinity];
  let t = 0;
  let f = 0;
  for (let i = 0; i < n; i++) {
    const idx = order[i];
    if (positive[idx]) t++;
    else f++;
    // Emit a point only after the last row of a run of tied scores.
    if (i === n - 1 || scores[order[i + 1]] !== scores[idx]) {
      tp.push(t);
      fp.push(f);
      thresholds.push(scores[idx]);
    }
  }
  return {
    fpr: fp.map((v) => v / negatives),
    tpr: tp.map((v) => v / positives),
    thresholds,
    positives,
    negatives,
  };
}

/** Area under a curve given by increasing `x`, by the trapezoid rule. */
export function trapezoidArea(x: number[], y: number[]): number {
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return area;
}

/** Binary ROC AUC; null when the truth has no positives or no negatives. */
export function binaryAuc(scores: ArrayLike<number>, positive: ArrayLike<number>): number | null {
  const roc = rocCurve(scores, positive);
  if (roc.positives === 0 || roc.negatives === 0) return null;
  return trapezoidArea(roc.fpr, roc.tpr);
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/**
 * Reduces a monotone curve to at most `maxPoints` points for plotting: first drops points that
 * lie on a straight segment between their neighbours, then (if still too many) keeps points
 * evenly spaced along fpr + tpr. The first and last points are always kept. Values are rounded
 * to 6 decimals.
 */
export function thinCurve(
  fpr: number[],
  tpr: number[],
  maxPoints = ROC_PLOT_POINTS,
): { fpr: number[]; tpr: number[] } {
  if (maxPoints < 2) throw new RangeError("maxPoints must be at least 2");
  const n = fpr.length;
  let keep: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i === 0 || i === n - 1) {
      keep.push(i);
      continue;
    }
    const cross = (fpr[i] - fpr[i - 1]) * (tpr[i + 1] - tpr[i]) -
      (tpr[i] - tpr[i - 1]) * (fpr[i + 1] - fpr[i]);
    if (Math.abs(cross) > 1e-12) keep.push(i);
  }
  if (keep.length > maxPoints) {
    const s = (i: number) => fpr[i] + tpr[i];
    const start = s(keep[0]);
    const span = s(keep[keep.length - 1]) - start;
    const picked: number[] = [keep[0]];
    let j = 1;
    for (let k = 1; k < maxPoints - 1; k++) {
      const target = start + (span * k) / (maxPoints - 1);
      while (j < keep.length - 1 && s(keep[j]) < target) j++;
      if (j < keep.length - 1 && keep[j] !== picked[picked.length - 1]) picked.push(keep[j]);
    }
    picked.push(keep[keep.length - 1]);
    keep = picked;
  }
  return { fpr: keep.map((i) => round6(fpr[i])), tpr: keep.map((i) => round6(tpr[i])) };
}

/** One class's one-vs-rest ROC, thinned for plotting. */
export interface ClassRoc {
  classIndex: number;
  /** null when the class has no true samples (or every sample is of this class). */
  auc: number | null;
  fpr: number[];
  tpr: number[];
}

/**
 * One-vs-rest ROC of every class from N x C scores, and the macro AUC (unweighted mean over
 * the classes whose AUC is defined), as sklearn `roc_auc_score(multi_class="ovr",
 * average="macro")`. Unlike sklearn, which raises, a class absent from the labels is skipped
 * and listed in `skipped`; its curve is empty.
 */
export function ovrRoc(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
  maxPoints = ROC_PLOT_POINTS,
): { macroAuc: number | null; perClass: ClassRoc[]; skipped: number[] } {
  const n = checkProbsLabels(probs, labels, numClasses);
  const scores = new Float64Array(n);
  const positive = new Uint8Array(n);
  const perClass: ClassRoc[] = [];
  const skipped: number[] = [];
  let sum = 0;
  for (let c = 0; c < numClasses; c++) {
    for (let i = 0; i < n; i++) {
      scores[i] = probs[i * numClasses + c];
      positive[i] = labels[i] === c ? 1 : 0;
    }
    const roc = rocCurve(scores, positive);
    if (roc.positives === 0 || roc.negatives === 0) {
      skipped.push(c);
      perClass.push({ classIndex: c, auc: null, fpr: [], tpr: [] });
      continue;
    }
    const auc = trapezoidArea(roc.fpr, roc.tpr);
    sum += auc;
    perClass.push({ classIndex: c, auc, ...thinCurve(roc.fpr, roc.tpr, maxPoints) });
  }
  const used = numClasses - skipped.length;
  return { macroAuc: used > 0 ? sum / used : null, perClass, skipped };
}
