import assert from "node:assert/strict";
import { mulberry32, syntheticStudy } from "./synthetic_study.ts";

Deno.test("synthetic study is deterministic, JSON-clean, and learns over epochs", () => {
  const a = syntheticStudy(3);
  const b = syntheticStudy(3);
  assert.deepEqual(a, b);
  assert.notDeepEqual(syntheticStudy(4).models[0].test.accuracy, a.models[0].test.accuracy);
  assert.deepEqual(JSON.parse(JSON.stringify(a)), a);
  assert.equal(a.models.length, 2);
  for (const m of a.models) {
    assert.equal(m.epochs.length, 3);
    assert.ok(m.epochs[2].trainLoss < m.epochs[0].trainLoss);
    assert.ok(m.epochs.some((e) => e.epoch === m.bestEpoch));
    assert.equal(Object.keys(m.epochs[0].valPerClassRecall)[4], "mel");
  }
  const r = mulberry32(1);
  const xs = Array.from({ length: 1000 }, r);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.ok(Math.abs(xs.reduce((s, x) => s + x) / 1000 - 0.5) < 0.05);
});
