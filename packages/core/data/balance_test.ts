import assert from "node:assert/strict";
import { balancedIndices, classWeights } from "./balance.ts";

Deno.test("classWeights: inverse frequency, mean 1 over present classes, 0 for absent", () => {
  const labels = [...Array(60).fill(0), ...Array(30).fill(1), ...Array(10).fill(3)];
  const w = classWeights(labels, 4);
  assert.equal(w[2], 0);
  const present = [w[0], w[1], w[3]];
  assert.ok(Math.abs(present.reduce((s, x) => s + x) / 3 - 1) < 1e-12);
  assert.ok(Math.abs(w[0] * 60 - w[1] * 30) < 1e-12 && Math.abs(w[1] * 30 - w[3] * 10) < 1e-12);
});

Deno.test("balancedIndices: seeded, every class about equally often", () => {
  const labels = [...Array(900).fill(0), ...Array(90).fill(1), ...Array(10).fill(2)];
  const a = balancedIndices(labels, 30000, 5);
  assert.deepEqual(a, balancedIndices(labels, 30000, 5));
  assert.notDeepEqual(a, balancedIndices(labels, 30000, 6));
  const perClass = [0, 0, 0];
  for (const i of a) perClass[labels[i]]++;
  for (const c of perClass) assert.ok(Math.abs(c / 30000 - 1 / 3) < 0.02, `${perClass}`);
  // Every rare sample is drawn: the 10 class-2 images share ~10000 draws.
  assert.equal(new Set(Array.from(a).filter((i) => labels[i] === 2)).size, 10);
});
