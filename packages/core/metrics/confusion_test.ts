import assert from "node:assert/strict";
import { argmaxRows, confusionMatrix, confusionMatrixFromPredictions } from "./confusion.ts";

Deno.test("argmax takes the first of tied maxima", () => {
  const probs = new Float32Array([0.2, 0.4, 0.4, 0.5, 0.25, 0.25, 0.1, 0.1, 0.8]);
  assert.deepEqual(Array.from(argmaxRows(probs, 3)), [1, 0, 2]);
});

Deno.test("confusion matrix counts truth by row and prediction by column", () => {
  // Row 0 truth 1 predicted 1; row 1 truth 2 predicted 0; row 2 truth 2 predicted 2.
  const probs = new Float32Array([0.1, 0.8, 0.1, 0.6, 0.3, 0.1, 0.2, 0.2, 0.6]);
  const cm = confusionMatrix(probs, new Int32Array([1, 2, 2]), 3);
  assert.deepEqual(cm, [
    [0, 0, 0],
    [0, 1, 0],
    [1, 0, 1],
  ]);
});

Deno.test("confusion matrix rejects bad shapes and labels", () => {
  assert.throws(() => confusionMatrix(new Float32Array(5), new Int32Array(2), 3), RangeError);
  assert.throws(() => confusionMatrixFromPredictions([0], [3], 3), /label 3/);
  assert.throws(() => confusionMatrixFromPredictions([0, 1], [0], 3), RangeError);
  assert.throws(
    () => confusionMatrix(new Float32Array([NaN, 1]), new Int32Array([0]), 2),
    /non-finite/,
  );
});
