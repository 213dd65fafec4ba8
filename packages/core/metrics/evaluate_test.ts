import assert from "node:assert/strict";
import fc from "fast-check";
import { evaluateClassifier, HAM10000_CLASSES, MEL_INDEX } from "./evaluate.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b} (tol ${tol})`);
const f = Math.fround;

// A 3-class example worked by hand (f32 probabilities, as the GPU gives them).
//  row  label  probs               argmax  conf  right
//   0     0    .7   .2   .1          0      .7    yes
//   1     0    .3   .55  .15         1      .55   no
//   2     1    .2   .5   .3          1      .5    yes
//   3     1    .1   .85  .05         1      .85   yes
//   4     1    .05  .3   .65         2      .65   no
//   5     2    .2   .3   .5          2      .5    yes
//   6     2    .1   .2   .7          2      .7    yes
const PROBS = new Float32Array([
  [0.7, 0.2, 0.1],
  [0.3, 0.55, 0.15],
  [0.2, 0.5, 0.3],
  [0.1, 0.85, 0.05],
  [0.05, 0.3, 0.65],
  [0.2, 0.3, 0.5],
  [0.1, 0.2, 0.7],
].flat());
const LABELS = new Int32Array([0, 0, 1, 1, 1, 2, 2]);
const NAMES = ["a", "mel", "c"];

Deno.test("hand example: every field of the report", () => {
  const r = evaluateClassifier(PROBS, LABELS, NAMES);
  assert.equal(r.numSamples, 7);
  assert.deepEqual(r.confusionMatrix, [
    [1, 1, 0],
    [0, 2, 1],
    [0, 0, 2],
  ]);
  close(r.accuracy, 5 / 7);
  close(r.weightedRecall, 5 / 7);
  close(r.weightedPrecision, (1 * 2 + (2 / 3) * 3 + (2 / 3) * 2) / 7);
  close(r.balancedAccuracy, (1 / 2 + 2 / 3 + 1) / 3);
  close(r.macroF1, (2 / 3 + 4 / 6 + 4 / 5) / 3);
  // AUC by pairs (positive beats negative = 1, tie = 1/2):
  // class 0: positives .7, .3 beat negatives .2 .1 .1 .2 .1: 10 / 10.
  // class 1: positives .5, .85, .3 vs negatives .2, .55, .3, .2: 3 + 4 + 2.5 (tie at .3) = 9.5/12.
  // class 2: positives .5, .7 vs negatives .1 .15 .3 .05 .65: 4 + 5 = 9 / 10.
  [1, 9.5 / 12, 9 / 10].forEach((auc, k) => close(r.perClass[k].auc!, auc));
  close(r.macroAuc!, (1 + 9.5 / 12 + 0.9) / 3);
  assert.deepEqual(r.aucSkippedClasses, []);
  assert.equal(r.rocCurves.length, 3);
  // Melanoma is the class named "mel" (index 1 here): TP 2 of 3; 1 false positive of 4 negatives.
  assert.deepEqual(r.melanoma, { index: 1, name: "mel", sensitivity: 2 / 3, specificity: 3 / 4 });
  // Cross-entropy: mean of -ln p[label].
  const pl = [0.7, 0.3, 0.5, 0.85, 0.3, 0.5, 0.7].map(f);
  close(r.crossEntropy, -pl.reduce((s, p) => s + Math.log(p), 0) / 7);
  assert.equal(r.loss, r.crossEntropy);
  // ECE, 15 bins of width 1/15: .5 -> bin 7 (2 rows, both right), .55 -> 8 (wrong),
  // .65 -> 9 (wrong), .7 -> 10 (2 right), .85 -> 12 (right).
  const ece = (2 * (1 - f(0.5)) + f(0.55) + f(0.65) + 2 * (1 - f(0.7)) + (1 - f(0.85))) / 7;
  close(r.calibration.ece, ece, 1e-9);
  assert.deepEqual(r.calibration.bins.map((b) => b.count), [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    2,
    1,
    1,
    2,
    0,
    1,
    0,
    0,
  ]);
  // Brier: sum over rows of squared distance to the one-hot label, per row by hand.
  const brier = [
    0.09 + 0.04 + 0.01,
    0.49 + 0.3025 + 0.0225,
    0.04 + 0.25 + 0.09,
    0.01 + 0.0225 + 0.0025,
    0.0025 + 0.49 + 0.4225,
    0.04 + 0.09 + 0.25,
    0.01 + 0.04 + 0.09,
  ].reduce((a, b) => a + b) / 7;
  close(r.brierScore, brier, 1e-6);
  // Plain data: survives JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
});

Deno.test("given loss is reported; absent classes are skipped and listed", () => {
  // Only classes 0 and 1 occur among 3.
  const probs = new Float32Array([0.8, 0.1, 0.1, 0.3, 0.6, 0.1, 0.5, 0.2, 0.3]);
  const r = evaluateClassifier(probs, new Int32Array([0, 1, 1]), ["x", "y", "z"], { loss: 1.25 });
  assert.equal(r.loss, 1.25);
  assert.deepEqual(r.aucSkippedClasses, ["z"]);
  assert.deepEqual(r.absentClasses, ["z"]);
  assert.equal(r.melanoma, null);
  assert.equal(r.perClass[2].recall, null);
  assert.deepEqual(r.rocCurves.map((c) => c.name), ["x", "y"]);
  // class x: positive .8 beats .3 and .5 -> 1; class y: positives .6, .2 vs negative .1 -> 1.
  close(r.macroAuc!, 1);
  assert.throws(() => evaluateClassifier(new Float32Array(0), new Int32Array(0), ["a"]));
  assert.throws(() => evaluateClassifier(probs, new Int32Array([0, 1]), ["x", "y", "z"]));
});

Deno.test("HAM10000 order puts melanoma at MEL_INDEX", () => {
  assert.equal(HAM10000_CLASSES[MEL_INDEX], "mel");
  assert.equal(HAM10000_CLASSES.length, 7);
});

Deno.test("property: thinned ROC curves stay within 200 points and near the true AUC", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(1)), {
        minLength: 400,
        maxLength: 1500,
      }),
      (rows) => {
        const probs = new Float32Array(rows.flatMap(([p]) => [p, 1 - p]));
        const labels = new Int32Array(rows.map((r) => r[1]));
        if (new Set(labels).size < 2) return;
        const r = evaluateClassifier(probs, labels, ["p", "q"]);
        for (const c of r.rocCurves) {
          assert.ok(c.fpr.length <= 200, `${c.fpr.length} points`);
          let a = 0;
          for (let i = 1; i < c.fpr.length; i++) {
            a += ((c.fpr[i] - c.fpr[i - 1]) * (c.tpr[i] + c.tpr[i - 1])) / 2;
          }
          close(a, c.auc, 0.01);
        }
      },
    ),
    { seed: 501, numRuns: 20 },
  );
});
