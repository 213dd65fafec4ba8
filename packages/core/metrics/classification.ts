/**
 * Metrics read off a confusion matrix `cm[true][pred]` (see `confusion.ts`). Precision, recall
 * and F1 follow scikit-learn with `zero_division=0`; an undefined recall (class with no true
 * samples) is `null` and left out of the averages that sklearn also leaves it out of.
 */

/** Per-class counts and rates. */
export interface ClassCounts {
  /** True samples of the class (row sum). */
  support: number;
  /** Samples predicted as the class (column sum). */
  predicted: number;
  truePositives: number;
  /** TP / predicted; 0 when the class is never predicted (sklearn zero_division=0). */
  precision: number;
  /** TP / support; null when the class has no true samples. */
  recall: number | null;
  /** 2TP / (2TP + FP + FN); 0 when the denominator is 0 (sklearn zero_division=0). */
  f1: number;
}

function checkSquare(cm: number[][]): number {
  const c = cm.length;
  for (const row of cm) {
    if (row.length !== c) throw new RangeError(`confusion matrix is not square (${c} rows)`);
  }
  return c;
}

/** Sum of all cells. */
export function totalCount(cm: number[][]): number {
  let n = 0;
  for (const row of cm) for (const v of row) n += v;
  return n;
}

/** Precision, recall, F1 and support for every class, in class order. */
export function perClassCounts(cm: number[][]): ClassCounts[] {
  const c = checkSquare(cm);
  const out: ClassCounts[] = [];
  for (let k = 0; k < c; k++) {
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < c; j++) {
      support += cm[k][j];
      predicted += cm[j][k];
    }
    const tp = cm[k][k];
    const f1Den = support + predicted; // = 2TP + FP + FN
    out.push({
      support,
      predicted,
      truePositives: tp,
      precision: predicted > 0 ? tp / predicted : 0,
      recall: support > 0 ? tp / support : null,
      f1: f1Den > 0 ? (2 * tp) / f1Den : 0,
    });
  }
  return out;
}

function nonEmpty(cm: number[][]): number {
  checkSquare(cm);
  const n = totalCount(cm);
  if (n === 0) throw new RangeError("metric of an empty confusion matrix");
  return n;
}

/** Fraction of samples on the diagonal: trace / total. */
export function accuracy(cm: number[][]): number {
  const n = nonEmpty(cm);
  let trace = 0;
  for (let k = 0; k < cm.length; k++) trace += cm[k][k];
  return trace / n;
}

/** sklearn `precision_score(average="weighted", zero_division=0)`: precision weighted by support. */
export function weightedPrecision(cm: number[][]): number {
  const n = nonEmpty(cm);
  let s = 0;
  for (const k of perClassCounts(cm)) s += k.precision * k.support;
  return s / n;
}

/** sklearn `recall_score(average="weighted")`: recall weighted by support (equals accuracy). */
export function weightedRecall(cm: number[][]): number {
  const n = nonEmpty(cm);
  let s = 0;
  for (const k of perClassCounts(cm)) if (k.recall !== null) s += k.recall * k.support;
  return s / n;
}

/**
 * sklearn `balanced_accuracy_score`: mean recall over the classes present in the labels
 * (classes with no true samples are left out).
 */
export function balancedAccuracy(cm: number[][]): number {
  nonEmpty(cm);
  let s = 0;
  let m = 0;
  for (const k of perClassCounts(cm)) {
    if (k.recall !== null) {
      s += k.recall;
      m++;
    }
  }
  return s / m;
}

/**
 * sklearn `f1_score(average="macro", zero_division=0)` without `labels=`: mean F1 over the
 * classes that occur in the labels or in the predictions.
 */
export function macroF1(cm: number[][]): number {
  nonEmpty(cm);
  let s = 0;
  let m = 0;
  for (const k of perClassCounts(cm)) {
    if (k.support > 0 || k.predicted > 0) {
      s += k.f1;
      m++;
    }
  }
  return s / m;
}

/** One-vs-rest sensitivity (recall) and specificity (TN / negatives) of class `k`. */
export function sensitivitySpecificity(
  cm: number[][],
  k: number,
): { sensitivity: number | null; specificity: number | null } {
  const c = checkSquare(cm);
  if (!Number.isInteger(k) || k < 0 || k >= c) throw new RangeError(`class ${k} out of range`);
  const counts = perClassCounts(cm)[k];
  const n = totalCount(cm);
  const negatives = n - counts.support;
  const falsePositives = counts.predicted - counts.truePositives;
  return {
    sensitivity: counts.recall,
    specificity: negatives > 0 ? (negatives - falsePositives) / negatives : null,
  };
}
