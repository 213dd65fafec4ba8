/** `--limit N`: a seeded subset of samples that keeps the class proportions. */
import type { Sample } from "../../core/data/ham10000.ts";
import { mixSeed, Rng } from "../../core/data/rng.ts";

/**
 * About `n` of `samples`, stratified by label: each class gets its proportional share (largest
 * remainders first), at least one image for every class present when `n` allows it. The
 * result keeps the order of `samples`. Returns all samples when `n` >= their number.
 */
export function stratifiedSubset(samples: readonly Sample[], n: number, seed: number): Sample[] {
  if (n >= samples.length) return [...samples];
  const byClass = new Map<number, number[]>();
  samples.forEach((s, i) => {
    const list = byClass.get(s.label);
    if (list) list.push(i);
    else byClass.set(s.label, [i]);
  });
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const total = samples.length;
  const quota = new Map<number, number>();
  const floor = n >= classes.length ? 1 : 0;
  let given = 0;
  const rem: [number, number][] = [];
  for (const c of classes) {
    const exact = (n * byClass.get(c)!.length) / total;
    const q = Math.min(byClass.get(c)!.length, Math.max(floor, Math.floor(exact)));
    quota.set(c, q);
    given += q;
    rem.push([c, exact - Math.floor(exact)]);
  }
  rem.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  for (let k = 0; given < n && k < rem.length * 2; k++) {
    const c = rem[k % rem.length][0];
    if (quota.get(c)! < byClass.get(c)!.length) {
      quota.set(c, quota.get(c)! + 1);
      given++;
    }
  }
  const keep = new Set<number>();
  for (const c of classes) {
    const idx = new Rng(mixSeed(seed, 11, c)).shuffle([...byClass.get(c)!]);
    for (const i of idx.slice(0, quota.get(c)!)) keep.add(i);
  }
  return samples.filter((_, i) => keep.has(i));
}
