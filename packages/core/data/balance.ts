/** Class imbalance: inverse-frequency loss weights and a class-balanced sampler. */
import { Rng } from "./rng.ts";

/**
 * Inverse-frequency class weights w_c proportional to 1/n_c, normalised so the mean over the
 * classes that occur is 1. Classes with no samples get weight 0.
 */
export function classWeights(labels: ArrayLike<number>, numClasses: number): Float64Array {
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  const w = new Float64Array(numClasses);
  let sum = 0, present = 0;
  for (let c = 0; c < numClasses; c++) {
    if (counts[c] > 0) {
      w[c] = 1 / counts[c];
      sum += w[c];
      present++;
    }
  }
  for (let c = 0; c < numClasses; c++) w[c] *= present / sum;
  return w;
}

/**
 * `count` sample indices drawn with replacement so that every class that occurs is equally
 * likely: a class uniformly at random, then one of its samples uniformly (seeded).
 */
export function balancedIndices(
  labels: ArrayLike<number>,
  count: number,
  seed: number,
): Int32Array {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = byClass.get(labels[i]);
    if (list) list.push(i);
    else byClass.set(labels[i], [i]);
  }
  const groups = [...byClass.keys()].sort((a, b) => a - b).map((k) => byClass.get(k)!);
  const out = new Int32Array(count);
  if (groups.length === 0) return out.subarray(0, 0);
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) {
    const g = groups[rng.int(groups.length)];
    out[i] = g[rng.int(g.length)];
  }
  return out;
}
