/**
 * The gradient-check harness. For one op and a fast-check generator of cases it checks:
 *  (a) the f64 CPU reference's vector-Jacobian product against central differences of the
 *      CPU forward, and
 *  (b) the GPU forward and the GPU backward (through the autodiff tape) against the CPU
 *      reference, within stated f32 tolerances.
 * Runs are reproducible: the seed is fixed (GRADCHECK_SEED overrides it) and printed, with
 * the failing case, when a property fails.
 */
import fc from "fast-check";
import { initGpu } from "../../packages/kernels/runtime/gpu.ts";
import { assertClose } from "../../packages/kernels/ops/testing.ts";
import { type Tensor, tensor } from "../../packages/core/tensor.ts";
import { tidy } from "../../packages/core/scope.ts";
import { backward } from "../../packages/core/autograd.ts";

export interface Input {
  shape: number[];
  data: Float64Array;
  /** i32 inputs (labels) are passed through and never differentiated. */
  int?: boolean;
}

export interface OpSpec<C> {
  name: string;
  cases: fc.Arbitrary<C>;
  inputs(c: C): Input[];
  cpu(c: C, x: Float64Array[]): Float64Array;
  /** Gradient of sum(cpu(x) * dy) for each input (null for non-differentiable inputs). */
  cpuVjp(c: C, x: Float64Array[], dy: Float64Array): (Float64Array | null)[];
  gpu(c: C, x: Tensor[]): Tensor;
  /** Relative tolerances for the GPU (f32) against the reference; defaults 2e-5 / 1e-4. */
  tol?: (c: C) => { forward: number; backward: number };
  /** Skip the finite-difference check (a) (for ops whose reference is itself the spec). */
  noFiniteDiff?: boolean;
}

export const SEED = Number(Deno.env.get("GRADCHECK_SEED") ?? 20261126);

/**
 * A random array uniform in [lo, hi) whose elements stay `gap` away from the given kinks.
 * Values are f32-representable, so the f64 reference sees exactly what the GPU sees.
 */
export function dataArb(n: number, lo = -2, hi = 2, kinks: number[] = [], gap = 1e-3) {
  const steps = 1 << 20;
  return fc.array(fc.integer({ min: 0, max: steps }), { minLength: n, maxLength: n }).map((xs) =>
    Float64Array.from(xs, (i) => {
      let v = lo + ((hi - lo) * i) / steps;
      for (const k of kinks) if (Math.abs(v - k) < gap) v = k + (v >= k ? gap : -gap);
      return Math.fround(v);
    })
  );
}

export const shapeArb = (minRank = 1, maxRank = 4, maxDim = 7) =>
  fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });

/** Coordinates per input whose derivative is checked by finite differences. */
const FD_SAMPLES = 48;

function sampleIndices(n: number, max: number, salt: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  // A spread of coordinates: both ends and a stride through the middle.
  const step = (n - 1) / (max - 1);
  return Array.from({ length: max }, (_, j) => Math.min(n - 1, Math.round(j * step + (salt % 3))));
}

/** d/dx_k[i] of sum(f(x) * dy) by central differences in f64, for each index i. */
function centralDiff(
  f: (xs: Float64Array[]) => Float64Array,
  xs: Float64Array[],
  k: number,
  idx: number[],
  dy: Float64Array,
  h = 1e-6,
): number[] {
  const dot = (y: Float64Array) => y.reduce((s, v, i) => s + v * dy[i], 0);
  return idx.map((i) => {
    const copy = xs.slice();
    const x = Float64Array.from(xs[k]);
    copy[k] = x;
    x[i] = xs[k][i] + h;
    const up = dot(f(copy));
    x[i] = xs[k][i] - h;
    return (up - dot(f(copy))) / (2 * h);
  });
}

function dyFor(n: number, seed: number): Float64Array {
  // A fixed, irregular upstream gradient: tests every output element's contribution.
  return Float64Array.from({ length: n }, (_, i) => Math.sin(seed + 1.7 * i) + 0.1);
}

export async function gradcheck<C>(spec: OpSpec<C>, numRuns = 12): Promise<void> {
  const g = await initGpu();
  await fc.assert(
    fc.asyncProperty(spec.cases, async (c) => {
      const inputs = spec.inputs(c);
      const xs = inputs.map((i) => i.data);
      const y = spec.cpu(c, xs);
      const dy = dyFor(y.length, xs.length);
      const vjp = spec.cpuVjp(c, xs, dy);
      // (a) CPU reference gradient against central differences in f64.
      if (!spec.noFiniteDiff) {
        vjp.forEach((gr, k) => {
          if (!gr || inputs[k].int) return;
          const idx = sampleIndices(xs[k].length, FD_SAMPLES, k);
          const numeric = centralDiff((v) => spec.cpu(c, v), xs, k, idx, dy);
          assertClose(idx.map((i) => gr[i]), numeric, 1e-5, `${spec.name} cpu vjp #${k}`);
        });
      }
      // (b) GPU forward and backward against the reference.
      const tol = spec.tol?.(c) ?? { forward: 2e-5, backward: 1e-4 };
      const ts = inputs.map((i) =>
        i.int
          ? tensor(Int32Array.from(i.data), i.shape)
          : tensor(Float32Array.from(i.data), i.shape)
      );
      ts.forEach((t, k) => (t.requiresGrad = !inputs[k].int && vjp[k] !== null));
      const out = tidy(() => {
        const yt = spec.gpu(c, ts);
        const seed = tensor(Float32Array.from(dy), yt.shape);
        backward(yt, seed);
        return yt;
      });
      try {
        assertClose(await out.read(), y, tol.forward, `${spec.name} gpu forward`);
        for (let k = 0; k < ts.length; k++) {
          const ref = vjp[k];
          if (!ref || inputs[k].int) continue;
          const grad = ts[k].grad;
          if (!grad) throw new Error(`${spec.name}: no gradient reached input #${k}`);
          assertClose(await grad.read(), ref, tol.backward, `${spec.name} gpu backward #${k}`);
        }
      } finally {
        out.dispose();
        for (const t of ts) {
          t.grad?.dispose();
          t.dispose();
        }
      }
      g.check();
    }),
    { seed: SEED, numRuns, endOnFailure: true },
  );
}
