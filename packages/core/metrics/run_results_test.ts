import assert from "node:assert/strict";
import { evaluateClassifier } from "./evaluate.ts";
import { assertStudyResults, epochValidationFields } from "./run_results.ts";
import { syntheticStudy } from "./synthetic_study.ts";

Deno.test("epochValidationFields copies the validation metrics by name", () => {
  // Rows: (label 0, pred 0), (label 1, pred 0), (label 1, pred 1); class "z" is absent.
  const probs = new Float32Array([0.9, 0.05, 0.05, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1]);
  const r = evaluateClassifier(probs, new Int32Array([0, 1, 1]), ["x", "y", "z"], { loss: 0.5 });
  const f = epochValidationFields(r);
  assert.equal(f.valLoss, 0.5);
  assert.equal(f.valAccuracy, 2 / 3);
  assert.equal(f.valPrecision, r.weightedPrecision);
  assert.equal(f.valRecall, 2 / 3);
  assert.equal(f.valBalancedAccuracy, (1 + 0.5) / 2);
  assert.equal(f.valMacroF1, r.macroF1);
  assert.deepEqual(f.valPerClassRecall, { x: 1, y: 0.5, z: null });
});

Deno.test("assertStudyResults accepts a study and names the first bad field", () => {
  const text = JSON.stringify(syntheticStudy(11, ["resnet18"], 1, 50));
  assertStudyResults(JSON.parse(text));
  const study = JSON.parse(text);
  assert.throws(() => assertStudyResults(null), /top level/);
  const noAdapter = { ...study, adapter: 3 };
  assert.throws(() => assertStudyResults(noAdapter), /adapter must be a string/);
  const badTest = JSON.parse(text);
  delete badTest.models[0].test.accuracy;
  assert.throws(() => assertStudyResults(badTest), /models\[0\]\.test\.accuracy/);
  const badEpoch = JSON.parse(text);
  badEpoch.models[0].epochs[0].epoch = "1";
  assert.throws(() => assertStudyResults(badEpoch), /epochs\[0\]\.epoch/);
});
