import assert from "node:assert/strict";
import fc from "fast-check";
import {
  accuracy,
  balancedAccuracy,
  macroF1,
  perClassCounts,
  sensitivitySpecificity,
  weightedPrecision,
  weightedRecall,
} from "./classification.ts";
import { confusionMatrixFromPredictions } from "./confusion.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b} (tol ${tol})`);

// Worked by hand. Rows are the truth, columns the prediction.
//   true 0: predicted 0 once, 1 once            support 2
//   true 1: predicted 1 twice, 2 once           support 3
//   true 2: predicted 2 twice                   support 2
// Column sums (predicted counts): 1, 3, 3.
const CM = [
  [1, 1, 0],
  [0, 2, 1],
  [0, 0, 2],
];

Deno.test("hand example: accuracy, weighted P/R, balanced accuracy, macro F1", () => {
  // Diagonal 1 + 2 + 2 = 5 of 7.
  close(accuracy(CM), 5 / 7);
  // Precision per class: 1/1, 2/3, 2/3; weights = supports 2, 3, 2.
  close(weightedPrecision(CM), (1 * 2 + (2 / 3) * 3 + (2 / 3) * 2) / 7);
  // Recall per class: 1/2, 2/3, 2/2; weighted by support it is TP total / N.
  close(weightedRecall(CM), (0.5 * 2 + (2 / 3) * 3 + 1 * 2) / 7);
  close(balancedAccuracy(CM), (1 / 2 + 2 / 3 + 1) / 3);
  // F1 = 2TP / (2TP + FP + FN): class 0: 2/(2+0+1); class 1: 4/(4+1+1); class 2: 4/(4+1+0).
  close(macroF1(CM), (2 / 3 + 4 / 6 + 4 / 5) / 3);
  const k = perClassCounts(CM);
  assert.deepEqual(k.map((c) => c.support), [2, 3, 2]);
  assert.deepEqual(k.map((c) => c.predicted), [1, 3, 3]);
});

Deno.test("hand example: one-vs-rest sensitivity and specificity", () => {
  // Class 1: TP 2 of 3 positives; negatives are the 4 rows of classes 0 and 2, one of which
  // (true 0, predicted 1) is a false positive.
  const s = sensitivitySpecificity(CM, 1);
  close(s.sensitivity!, 2 / 3);
  close(s.specificity!, 3 / 4);
  assert.throws(() => sensitivitySpecificity(CM, 3), RangeError);
});

Deno.test("zero_division=0 and absent classes follow sklearn", () => {
  // Class 2 never occurs and is never predicted; class 1 occurs but is never predicted.
  const cm = [
    [3, 0, 0],
    [1, 0, 0],
    [0, 0, 0],
  ];
  const k = perClassCounts(cm);
  assert.equal(k[1].precision, 0);
  assert.equal(k[2].recall, null);
  // Weighted precision: class 0 precision 3/4 with support 3, class 1 precision 0 (support 1).
  close(weightedPrecision(cm), (0.75 * 3) / 4);
  // Balanced accuracy over the two present classes only: (1 + 0) / 2.
  close(balancedAccuracy(cm), 0.5);
  // Macro F1 over classes in labels or predictions (0 and 1): F1_0 = 6/7, F1_1 = 0.
  close(macroF1(cm), (6 / 7 + 0) / 2);
  assert.equal(sensitivitySpecificity(cm, 2).sensitivity, null);
  assert.throws(() => accuracy([[0]]), RangeError);
  assert.throws(() => accuracy([[1, 0]]), RangeError);
});

const predsLabels = fc.integer({ min: 1, max: 6 }).chain((c) =>
  fc.array(fc.tuple(fc.nat(c - 1), fc.nat(c - 1)), { minLength: 1, maxLength: 60 }).map((
    pairs,
  ) => ({ c, pred: pairs.map((p) => p[0]), label: pairs.map((p) => p[1]) }))
);

Deno.test("property: accuracy = trace / total and weighted recall = accuracy", () => {
  fc.assert(
    fc.property(predsLabels, ({ c, pred, label }) => {
      const cm = confusionMatrixFromPredictions(pred, label, c);
      const hits = pred.filter((p, i) => p === label[i]).length;
      close(accuracy(cm), hits / pred.length);
      close(weightedRecall(cm), accuracy(cm), 1e-12);
    }),
    { seed: 101, numRuns: 200 },
  );
});

Deno.test("property: balanced accuracy = mean recall of the classes in the labels", () => {
  fc.assert(
    fc.property(predsLabels, ({ c, pred, label }) => {
      const recalls: number[] = [];
      for (let k = 0; k < c; k++) {
        const rows = label.flatMap((y, i) => (y === k ? [i] : []));
        if (rows.length > 0) recalls.push(rows.filter((i) => pred[i] === k).length / rows.length);
      }
      const mean = recalls.reduce((a, b) => a + b, 0) / recalls.length;
      close(balancedAccuracy(confusionMatrixFromPredictions(pred, label, c)), mean);
    }),
    { seed: 102, numRuns: 200 },
  );
});

Deno.test("property: weighted precision matches its definition from raw predictions", () => {
  fc.assert(
    fc.property(predsLabels, ({ c, pred, label }) => {
      let s = 0;
      for (let k = 0; k < c; k++) {
        const predictedK = pred.flatMap((p, i) => (p === k ? [i] : []));
        const support = label.filter((y) => y === k).length;
        const prec = predictedK.length === 0
          ? 0
          : predictedK.filter((i) => label[i] === k).length / predictedK.length;
        s += prec * support;
      }
      close(weightedPrecision(confusionMatrixFromPredictions(pred, label, c)), s / label.length);
    }),
    { seed: 103, numRuns: 200 },
  );
});
