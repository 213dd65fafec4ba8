import assert from "node:assert/strict";
import fc from "fast-check";
import { crossEntropyFromLogits, meanCrossEntropy, PROB_EPSILON, softmax } from "./softmax.ts";

const close = (a: number, b: number, tol: number) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b} (tol ${tol})`);

Deno.test("hand example: softmax and cross-entropy", () => {
  // logits (0, ln 3): probabilities 1/4, 3/4. Label 1: loss -ln(3/4).
  const p = softmax([0, Math.log(3)], 2);
  close(p[0], 0.25, 1e-7);
  close(p[1], 0.75, 1e-7);
  close(crossEntropyFromLogits([0, Math.log(3)], [1], 2), -Math.log(0.75), 1e-12);
  close(
    meanCrossEntropy([0.25, 0.75, 0.5, 0.5], [1, 0], 2),
    -(Math.log(0.75) + Math.log(0.5)) / 2,
    1e-12,
  );
  // A zero probability on the label is clipped, not infinite.
  close(meanCrossEntropy([1, 0], [1], 2), -Math.log(PROB_EPSILON), 1e-9);
  // Huge logits do not overflow.
  const big = softmax([1000, 1000 + Math.log(3)], 2);
  close(big[1], 0.75, 1e-7);
});

const logitRows = fc.integer({ min: 1, max: 7 }).chain((c) =>
  fc.array(
    fc.tuple(
      fc.array(fc.double({ min: -15, max: 15, noNaN: true }), { minLength: c, maxLength: c }),
      fc.nat(c - 1),
    ),
    { minLength: 1, maxLength: 20 },
  ).map((rows) => ({ c, logits: rows.flatMap((r) => r[0]), labels: rows.map((r) => r[1]) }))
);

Deno.test("property: softmax rows sum to 1 and ignore a constant shift", () => {
  fc.assert(
    fc.property(logitRows, fc.double({ min: -50, max: 50, noNaN: true }), (x, shift) => {
      const p = softmax(x.logits, x.c);
      const q = softmax(x.logits.map((v) => v + shift), x.c);
      for (let i = 0; i < p.length; i += x.c) {
        let s = 0;
        for (let k = 0; k < x.c; k++) s += p[i + k];
        close(s, 1, 1e-5);
      }
      for (let i = 0; i < p.length; i++) close(p[i], q[i], 1e-6);
    }),
    { seed: 401, numRuns: 200 },
  );
});

Deno.test("property: cross-entropy from logits = cross-entropy of their softmax", () => {
  fc.assert(
    fc.property(logitRows, (x) => {
      const fromLogits = crossEntropyFromLogits(x.logits, x.labels, x.c);
      // Logits in [-15, 15] keep every p above e^-30 / 7 > 1e-15, so no clipping happens, and
      // f32 probabilities only add a relative error of ~1e-7 inside the log.
      const fromProbs = meanCrossEntropy(softmax(x.logits, x.c), x.labels, x.c);
      close(fromProbs, fromLogits, 1e-5);
    }),
    { seed: 402, numRuns: 200 },
  );
});
