/** Shape checks shared by the metric functions. They throw `RangeError` with a precise message. */

/** Checks that `probs` is N x C (row-major), `labels` has N entries in [0, C), and returns N. */
export function checkProbsLabels(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number {
  checkNumClasses(numClasses);
  if (probs.length !== labels.length * numClasses) {
    throw new RangeError(
      `probs has ${probs.length} values but labels has ${labels.length} entries ` +
        `and there are ${numClasses} classes (expected ${labels.length * numClasses})`,
    );
  }
  checkLabels(labels, numClasses);
  for (let i = 0; i < probs.length; i++) {
    if (!Number.isFinite(probs[i])) {
      throw new RangeError(
        `non-finite score ${probs[i]} at row ${Math.floor(i / numClasses)}, ` +
          `class ${i % numClasses}`,
      );
    }
  }
  return labels.length;
}

/** Checks that every label is an integer in [0, numClasses). */
export function checkLabels(labels: ArrayLike<number>, numClasses: number): void {
  checkNumClasses(numClasses);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) {
      throw new RangeError(`label ${y} at row ${i} is not a class index in [0, ${numClasses})`);
    }
  }
}

/** Checks that the number of classes is a positive integer. */
export function checkNumClasses(numClasses: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
  }
}
