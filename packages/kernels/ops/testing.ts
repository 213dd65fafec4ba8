/** Small helpers shared by the kernel tests (not exported from the package). */
import type { Gpu } from "../runtime/gpu.ts";

/** A pooled GPU buffer holding `data` as f32. */
export function uploadF32(g: Gpu, data: Float64Array | Float32Array | number[]): GPUBuffer {
  return g.upload(Float32Array.from(data));
}

/** The first `n` f32 values of `buf`. */
export async function readF32(g: Gpu, buf: GPUBuffer, n: number): Promise<Float32Array> {
  return new Float32Array(await g.read(buf, n * 4));
}

/** `n` values uniform in [lo, hi) from a seeded mulberry32 generator. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

/** Throws unless |actual - expected| <= tol * (1 + |expected|) everywhere (same length too). */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  label = "",
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length} != expected ${expected.length}`);
  }
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (!(Math.abs(a - e) <= tol * (1 + Math.abs(e)))) {
      throw new Error(`${label}: element ${i} is ${a}, expected ${e} (tol ${tol})`);
    }
  }
}

/**
 * Central finite differences of sum(fn(inputs) * dy) with respect to every input element:
 * the vector-Jacobian product that a backward pass should return.
 */
export function finiteDiffVjp(
  fn: (inputs: Float64Array[]) => Float64Array,
  inputs: Float64Array[],
  dy: Float64Array,
  h = 1e-6,
): Float64Array[] {
  const dot = (y: Float64Array) => {
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * dy[i];
    return s;
  };
  return inputs.map((x, k) => {
    const grad = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const old = x[i];
      const copies = inputs.slice();
      const xp = Float64Array.from(x);
      xp[i] = old + h;
      copies[k] = xp;
      const up = dot(fn(copies));
      xp[i] = old - h;
      const down = dot(fn(copies));
      grad[i] = (up - down) / (2 * h);
    }
    return grad;
  });
}

/**
 * Runs a fast-check property block and, when it fails, rethrows with the seed and the
 * property's own failure message, so a failing run can be replayed (`FC_SEED=<seed>`).
 */
export async function withSeed(
  name: string,
  seed: number,
  run: () => Promise<void> | void,
): Promise<void> {
  try {
    await run();
  } catch (e) {
    const cause = (e as Error).cause as Error | undefined;
    throw new Error(
      `${name} failed (fast-check seed ${seed}): ${(e as Error).message}\n${cause?.message ?? ""}`,
    );
  }
}
