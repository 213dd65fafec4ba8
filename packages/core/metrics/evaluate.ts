/** `evaluateClassifier`: every classification metric of a labelled set, as one JSON object. */
import { brierScore, type Calibration, ECE_BINS, expectedCalibrationError } from "./calibration.ts";
import {
  accuracy,
  balancedAccuracy,
  macroF1,
  perClassCounts,
  sensitivitySpecificity,
  weightedPrecision,
  weightedRecall,
} from "./classification.ts";
import { confusionMatrix } from "./confusion.ts";
import { ovrRoc, ROC_PLOT_POINTS } from "./roc.ts";
import { meanCrossEntropy } from "./softmax.ts";
import { checkProbsLabels } from "./validate.ts";

/** HAM10000 class order used throughout dermagpu. */
export const HAM10000_CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"] as const;

/** Index of melanoma ("mel") in {@link HAM10000_CLASSES}. */
export const MEL_INDEX = 4;

/** Metrics of one class (one-vs-rest where that applies). */
export interface PerClassMetrics {
  name: string;
  index: number;
  /** True samples of the class. */
  support: number;
  /** Samples predicted as the class. */
  predicted: number;
  /** 0 when the class is never predicted (sklearn zero_division=0). */
  precision: number;
  /** null when the class has no true samples. */
  recall: number | null;
  f1: number;
  /** One-vs-rest ROC AUC; null when the class has no true samples. */
  auc: number | null;
}

/** One class's one-vs-rest ROC curve, thinned to at most ~200 points for plotting. */
export interface RocCurve {
  name: string;
  index: number;
  auc: number;
  fpr: number[];
  tpr: number[];
}

/** Everything `evaluateClassifier` measures. Plain data: `JSON.stringify` round-trips it. */
export interface ClassificationReport {
  numSamples: number;
  classNames: string[];
  /** `options.loss` when given (e.g. the mean loss from the logits), else `crossEntropy`. */
  loss: number;
  /** Mean -log p[label] from the probabilities (clipped at 1e-15). */
  crossEntropy: number;
  accuracy: number;
  /** sklearn precision_score(average="weighted", zero_division=0). */
  weightedPrecision: number;
  /** sklearn recall_score(average="weighted", zero_division=0); equals accuracy. */
  weightedRecall: number;
  /** Mean recall over classes present in the labels (sklearn balanced_accuracy_score). */
  balancedAccuracy: number;
  /** sklearn f1_score(average="macro", zero_division=0). */
  macroF1: number;
  /** sklearn roc_auc_score(multi_class="ovr", average="macro") over non-skipped classes. */
  macroAuc: number | null;
  /** Classes left out of the macro AUC because they are absent from the labels. */
  aucSkippedClasses: string[];
  /** Classes with no true samples in this set. */
  absentClasses: string[];
  /** In class order. */
  perClass: PerClassMetrics[];
  /** `confusionMatrix[true][predicted]`, in class order. */
  confusionMatrix: number[][];
  /** One per class whose AUC is defined, in class order. */
  rocCurves: RocCurve[];
  /** One-vs-rest figures for melanoma; null when there is no melanoma class. */
  melanoma: {
    index: number;
    name: string;
    sensitivity: number | null;
    specificity: number | null;
  } | null;
  calibration: Calibration;
  brierScore: number;
}

/** Options of {@link evaluateClassifier}. */
export interface EvaluateOptions {
  /** Loss to report (e.g. mean cross-entropy from logits); defaults to the one from `probs`. */
  loss?: number;
  /** Melanoma class index; defaults to the index of "mel" in `classNames` (none if absent). */
  melanomaIndex?: number;
  /** Reliability bins (default 15). */
  eceBins?: number;
  /** Maximum points per ROC curve (default 200). */
  rocPoints?: number;
}

/**
 * Evaluates probabilities `probs` (N x C row-major, rows summing to 1) against integer
 * `labels` (N). C is `classNames.length`. Throws RangeError on bad shapes, labels out of range,
 * non-finite scores or N = 0.
 */
export function evaluateClassifier(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  classNames: readonly string[],
  options: EvaluateOptions = {},
): ClassificationReport {
  const c = classNames.length;
  const n = checkProbsLabels(probs, labels, c);
  if (n === 0) throw new RangeError("cannot evaluate an empty set");
  const cm = confusionMatrix(probs, labels, c);
  const counts = perClassCounts(cm);
  const roc = ovrRoc(probs, labels, c, options.rocPoints ?? ROC_PLOT_POINTS);
  const crossEntropy = meanCrossEntropy(probs, labels, c);
  const melIndex = options.melanomaIndex ?? classNames.indexOf("mel");
  let melanoma: ClassificationReport["melanoma"] = null;
  if (melIndex >= 0) {
    if (melIndex >= c) throw new RangeError(`melanomaIndex ${melIndex} out of range`);
    melanoma = {
      index: melIndex,
      name: classNames[melIndex],
      ...sensitivitySpecificity(cm, melIndex),
    };
  }
  return {
    numSamples: n,
    classNames: [...classNames],
    loss: options.loss ?? crossEntropy,
    crossEntropy,
    accuracy: accuracy(cm),
    weightedPrecision: weightedPrecision(cm),
    weightedRecall: weightedRecall(cm),
    balancedAccuracy: balancedAccuracy(cm),
    macroF1: macroF1(cm),
    macroAuc: roc.macroAuc,
    aucSkippedClasses: roc.skipped.map((k) => classNames[k]),
    absentClasses: counts.flatMap((k, i) => (k.support === 0 ? [classNames[i]] : [])),
    perClass: counts.map((k, i) => ({
      name: classNames[i],
      index: i,
      support: k.support,
      predicted: k.predicted,
      precision: k.precision,
      recall: k.recall,
      f1: k.f1,
      auc: roc.perClass[i].auc,
    })),
    confusionMatrix: cm,
    rocCurves: roc.perClass.flatMap((r) =>
      r.auc === null ? [] : [{
        name: classNames[r.classIndex],
        index: r.classIndex,
        auc: r.auc,
        fpr: r.fpr,
        tpr: r.tpr,
      }]
    ),
    melanoma,
    calibration: expectedCalibrationError(probs, labels, c, options.eceBins ?? ECE_BINS),
    brierScore: brierScore(probs, labels, c),
  };
}
