import assert from "node:assert/strict";
import fc from "fast-check";
import { brierScore, confidenceBin, expectedCalibrationError } from "./calibration.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b} (tol ${tol})`);

Deno.test("confidence bins are (b/B, (b+1)/B], exact at the edges", () => {
  assert.equal(confidenceBin(1, 15), 14);
  assert.equal(confidenceBin(1 / 15, 15), 0);
  assert.equal(confidenceBin(0.6, 15), 8); // 0.6 = 9/15 is the upper edge of bin 8
  assert.equal(confidenceBin(0.6000001, 15), 9);
  assert.equal(confidenceBin(0, 15), 0);
  for (let b = 1; b <= 15; b++) assert.equal(confidenceBin(b / 15, 15), b - 1);
});

Deno.test("hand example: ECE over 15 bins and the reliability bins", () => {
  // Two classes. Confidences .55 (right), .55 (wrong) -> bin 8, accuracy .5, gap .05;
  // .9 (right) x 3 -> bin 13, accuracy 1, gap .1. ECE = 2/5 * .05 + 3/5 * .1.
  const probs = [0.55, 0.45, 0.45, 0.55, 0.9, 0.1, 0.1, 0.9, 0.9, 0.1];
  const labels = [0, 0, 0, 1, 0];
  const c = expectedCalibrationError(probs, labels, 2);
  close(c.ece, (2 / 5) * 0.05 + (3 / 5) * 0.1);
  assert.equal(c.bins.length, 15);
  assert.equal(c.bins[8].count, 2);
  close(c.bins[8].accuracy!, 0.5);
  close(c.bins[8].meanConfidence!, 0.55);
  assert.equal(c.bins[13].count, 3);
  assert.equal(c.bins[0].meanConfidence, null);
  assert.equal(c.bins.reduce((s, b) => s + b.count, 0), 5);
});

Deno.test("hand example: Brier score", () => {
  // Row 0: (0.7 - 1)^2 + 0.2^2 + 0.1^2 = .14; row 1 (label 2): .5^2 + .5^2 + (0 - 1)^2 = 1.5.
  close(brierScore([0.7, 0.2, 0.1, 0.5, 0.5, 0], [0, 2], 3), (0.14 + 1.5) / 2);
});

Deno.test("property: ECE is 0 when each bin's confidence equals its accuracy", () => {
  // Groups of m rows with top probability j/m of which exactly j are right.
  const group = fc.integer({ min: 1, max: 8 }).chain((m) =>
    fc.integer({ min: Math.floor(m / 2) + 1, max: m }).map((j) => ({ m, j }))
  );
  fc.assert(
    fc.property(fc.array(group, { minLength: 1, maxLength: 10 }), (groups) => {
      const probs: number[] = [];
      const labels: number[] = [];
      for (const { m, j } of groups) {
        for (let r = 0; r < m; r++) {
          probs.push(j / m, 1 - j / m);
          labels.push(r < j ? 0 : 1);
        }
      }
      close(expectedCalibrationError(probs, labels, 2).ece, 0, 1e-12);
      // Same rows with f32 probabilities: only rounding error is left.
      close(expectedCalibrationError(new Float32Array(probs), labels, 2).ece, 0, 1e-6);
    }),
    { seed: 301, numRuns: 200 },
  );
});

Deno.test("property: ECE of a single bin is |accuracy - mean confidence|", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.double({ min: 0.81, max: 0.86, noNaN: true }), fc.boolean()), {
        minLength: 1,
        maxLength: 30,
      }),
      (rows) => {
        const probs = rows.flatMap(([p]) => [p, 1 - p]);
        const labels = rows.map(([, right]) => (right ? 0 : 1));
        const acc = rows.filter((r) => r[1]).length / rows.length;
        const conf = rows.reduce((s, r) => s + r[0], 0) / rows.length;
        close(expectedCalibrationError(probs, labels, 2).ece, Math.abs(acc - conf), 1e-12);
      },
    ),
    { seed: 302, numRuns: 200 },
  );
});
