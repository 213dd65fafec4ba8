import assert from "node:assert/strict";
import { stratifiedSubset } from "./subset.ts";
import type { Sample } from "../../core/data/ham10000.ts";

function samples(counts: number[]): Sample[] {
  const out: Sample[] = [];
  counts.forEach((n, label) => {
    for (let i = 0; i < n; i++) out.push({ id: `c${label}-${i}`, path: "", label });
  });
  return out;
}

Deno.test("stratifiedSubset keeps class proportions, gives every class one image, is seeded", () => {
  const all = samples([30, 50, 110, 12, 111, 670, 14]); // HAM10000-like proportions
  const sub = stratifiedSubset(all, 100, 3);
  assert.equal(sub.length, 100);
  const count = (s: Sample[], c: number) => s.filter((x) => x.label === c).length;
  for (let c = 0; c < 7; c++) assert.ok(count(sub, c) >= 1, `class ${c} present`);
  assert.ok(Math.abs(count(sub, 5) - 67) <= 2, `nv ${count(sub, 5)}`);
  assert.deepEqual(sub.map((s) => s.id), stratifiedSubset(all, 100, 3).map((s) => s.id));
  assert.notDeepEqual(sub.map((s) => s.id), stratifiedSubset(all, 100, 4).map((s) => s.id));
  // Order of the input is kept; no duplicates.
  const pos = new Map(all.map((s, i) => [s.id, i]));
  const idx = sub.map((s) => pos.get(s.id)!);
  assert.deepEqual(idx, [...idx].sort((a, b) => a - b));
  assert.equal(new Set(idx).size, idx.length);
});

Deno.test("stratifiedSubset returns everything when n covers the set", () => {
  const all = samples([3, 2]);
  assert.equal(stratifiedSubset(all, 5, 0).length, 5);
  assert.equal(stratifiedSubset(all, 50, 0).length, 5);
});
