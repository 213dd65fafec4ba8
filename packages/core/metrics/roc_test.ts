import assert from "node:assert/strict";
import fc from "fast-check";
import { binaryAuc, ovrRoc, rocCurve, thinCurve } from "./roc.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b} (tol ${tol})`);

/** Mann-Whitney form of the AUC: P(score+ > score-) + P(tie) / 2, over all pairs. */
function pairwiseAuc(scores: number[], positive: number[]): number {
  let s = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!positive[i]) continue;
    for (let j = 0; j < scores.length; j++) {
      if (positive[j]) continue;
      pairs++;
      s += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return s / pairs;
}

Deno.test("hand example: ROC points merge tied thresholds", () => {
  // Scores 0.9(+) 0.8(-) 0.8(+) 0.1(-): the tied pair at 0.8 is one diagonal step.
  const roc = rocCurve([0.9, 0.8, 0.8, 0.1], [1, 0, 1, 0]);
  assert.deepEqual(roc.tpr, [0, 0.5, 1, 1]);
  assert.deepEqual(roc.fpr, [0, 0, 0.5, 1]);
  assert.deepEqual(roc.thresholds, [Infinity, 0.9, 0.8, 0.1]);
  // Area: the step from (0, .5) to (.5, 1) is a trapezoid of .5 * .75, then .5 * 1.
  close(binaryAuc([0.9, 0.8, 0.8, 0.1], [1, 0, 1, 0])!, 0.375 + 0.5);
  assert.equal(binaryAuc([0.3, 0.2], [1, 1]), null);
});

const binaryCase = fc.array(fc.tuple(fc.integer({ min: 0, max: 12 }), fc.boolean()), {
  minLength: 2,
  maxLength: 40,
}).filter((rows) => rows.some((r) => r[1]) && rows.some((r) => !r[1]));

Deno.test("property: AUC equals the pairwise (Mann-Whitney) AUC with ties as 1/2", () => {
  fc.assert(
    fc.property(binaryCase, (rows) => {
      const scores = rows.map((r) => r[0] / 12);
      const pos = rows.map((r) => (r[1] ? 1 : 0));
      close(binaryAuc(scores, pos)!, pairwiseAuc(scores, pos));
    }),
    { seed: 201, numRuns: 300 },
  );
});

Deno.test("property: perfect ranking gives AUC 1, reversed ranking 0", () => {
  fc.assert(
    fc.property(binaryCase, fc.integer({ min: 1, max: 1000 }), (rows, shift) => {
      const pos = rows.map((r) => (r[1] ? 1 : 0));
      // Every positive scores above every negative, ties allowed within each group.
      const perfect = rows.map((r) => (r[1] ? shift + 20 + r[0] : r[0]));
      assert.equal(binaryAuc(perfect, pos), 1);
      assert.equal(binaryAuc(perfect.map((s) => -s), pos), 0);
    }),
    { seed: 202, numRuns: 200 },
  );
});

Deno.test("property: AUC is invariant under strictly increasing transforms", () => {
  fc.assert(
    fc.property(binaryCase, (rows) => {
      const scores = rows.map((r) => r[0]);
      const pos = rows.map((r) => (r[1] ? 1 : 0));
      const base = binaryAuc(scores, pos)!;
      close(binaryAuc(scores.map((s) => Math.exp(s / 3) * 5 - 2), pos)!, base);
      close(binaryAuc(scores.map((s) => (s - 6) ** 3), pos)!, base);
      close(binaryAuc(scores.map((s) => 1 / (1 + Math.exp(-s))), pos)!, base);
    }),
    { seed: 203, numRuns: 200 },
  );
});

Deno.test("ovrRoc: macro AUC skips and reports a class absent from the labels", () => {
  // 3 classes, class 2 never occurs. Class 0 positives score .7, .6 vs negatives .2, .5: AUC 1.
  // Class 1 positives (.8, .3) vs negatives (.2, .3): pairs 1 + 1 + 1 + .5 = 3.5 of 4.
  const probs = new Float64Array([
    [0.7, 0.2, 0.1],
    [0.6, 0.3, 0.1],
    [0.2, 0.8, 0.0],
    [0.5, 0.3, 0.2],
  ].flat());
  const r = ovrRoc(probs, new Int32Array([0, 0, 1, 1]), 3);
  assert.deepEqual(r.skipped, [2]);
  assert.equal(r.perClass[2].auc, null);
  close(r.perClass[0].auc!, 1);
  close(r.perClass[1].auc!, 3.5 / 4);
  close(r.macroAuc!, (1 + 3.5 / 4) / 2);
});

Deno.test("property: thinCurve keeps endpoints, at most maxPoints, a monotone subset", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(30), fc.boolean()), { minLength: 2, maxLength: 300 }),
      fc.integer({ min: 2, max: 40 }),
      (rows, maxPoints) => {
        const roc = rocCurve(rows.map((r) => r[0]), rows.map((r) => (r[1] ? 1 : 0)));
        const fpr = roc.fpr.map((v) => (Number.isNaN(v) ? 0 : v));
        const tpr = roc.tpr.map((v) => (Number.isNaN(v) ? 0 : v));
        const t = thinCurve(fpr, tpr, maxPoints);
        assert.ok(t.fpr.length <= maxPoints && t.fpr.length >= 2);
        assert.equal(t.fpr[0], 0);
        close(t.fpr.at(-1)!, fpr.at(-1)!, 1e-6);
        close(t.tpr.at(-1)!, tpr.at(-1)!, 1e-6);
        for (let i = 1; i < t.fpr.length; i++) {
          assert.ok(t.fpr[i] >= t.fpr[i - 1] && t.tpr[i] >= t.tpr[i - 1]);
        }
        // Dropping only collinear points (no cap hit) keeps the area exactly.
        if (roc.positives > 0 && roc.negatives > 0) {
          const all = thinCurve(fpr, tpr, 10_000);
          let a = 0;
          for (let i = 1; i < all.fpr.length; i++) {
            a += ((all.fpr[i] - all.fpr[i - 1]) * (all.tpr[i] + all.tpr[i - 1])) / 2;
          }
          close(a, binaryAuc(rows.map((r) => r[0]), rows.map((r) => (r[1] ? 1 : 0)))!, 1e-5);
        }
      },
    ),
    { seed: 204, numRuns: 150 },
  );
});
