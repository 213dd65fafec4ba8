import assert from "node:assert/strict";
import fc from "fast-check";
import { mixSeed, Rng } from "./rng.ts";

const SEED = Number(Deno.env.get("FC_SEED") ?? 20240611);

Deno.test("rng: same seed, same stream; floats in [0, 1) with a mean near 1/2", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xs = Array.from({ length: 10000 }, () => a.float());
  assert.deepEqual(xs.slice(0, 100), Array.from({ length: 100 }, () => b.float()));
  assert.notDeepEqual(xs.slice(0, 100), Array.from({ length: 100 }, () => c.float()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
});

Deno.test("rng: shuffle is a seeded permutation (property)", () => {
  fc.assert(
    fc.property(fc.array(fc.integer()), fc.integer(), (items, seed) => {
      const s1 = new Rng(seed).shuffle(items.slice());
      const s2 = new Rng(seed).shuffle(items.slice());
      assert.deepEqual(s1, s2);
      assert.deepEqual(s1.slice().sort((x, y) => x - y), items.slice().sort((x, y) => x - y));
    }),
    { seed: SEED, numRuns: 200 },
  );
});

Deno.test("rng: mixSeed separates epochs and large seeds", () => {
  const seeds = new Set<number>();
  for (let e = 0; e < 1000; e++) seeds.add(mixSeed(7, e));
  assert.equal(seeds.size, 1000);
  assert.notEqual(mixSeed(1), mixSeed(1 + 2 ** 32));
  assert.equal(mixSeed(5, 6), mixSeed(5, 6));
});
