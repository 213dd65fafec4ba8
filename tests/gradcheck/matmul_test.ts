import fc from "fast-check";
import { dataArb, gradcheck } from "./harness.ts";
import {
  matmulBackwardCpu,
  matmulCpu,
  type MatmulParams,
} from "../../packages/kernels/ops/matmul.ts";
import { matmul } from "../../packages/core/ops/matmul.ts";

/** Sizes straddle the tile sizes (1, odd, > 32) so edge tiles and bounds checks run. */
const dim = fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 29, max: 70 }));

const cases = fc.record({
  M: dim,
  N: dim,
  K: dim,
  batch: fc.constantFrom(1, 3),
  transA: fc.boolean(),
  transB: fc.boolean(),
  sharedB: fc.boolean(),
}).chain((p) => {
  const batchA = p.batch > 1, batchB = p.batch > 1 && !p.sharedB;
  return fc.record({
    p: fc.constant<MatmulParams>({ ...p, batchA, batchB }),
    a: dataArb((batchA ? p.batch : 1) * p.M * p.K),
    b: dataArb((batchB ? p.batch : 1) * p.K * p.N),
  });
});

function shapes(p: MatmulParams): [number[], number[]] {
  const a = p.transA ? [p.K, p.M] : [p.M, p.K];
  const b = p.transB ? [p.N, p.K] : [p.K, p.N];
  return [p.batchA ? [p.batch!, ...a] : a, p.batchB ? [p.batch!, ...b] : b];
}

Deno.test("gradcheck matmul (transposes, batches, a shared operand, odd sizes)", async () => {
  await gradcheck({
    name: "matmul",
    cases,
    inputs: (c) => {
      const [sa, sb] = shapes(c.p);
      return [{ shape: sa, data: c.a }, { shape: sb, data: c.b }];
    },
    cpu: (c, [a, b]) => matmulCpu(a, b, c.p),
    cpuVjp: (c, [a, b], dy) => {
      const { da, db } = matmulBackwardCpu(a, b, dy, c.p);
      return [da, db];
    },
    gpu: (c, [a, b]) => matmul(a, b, { transA: c.p.transA, transB: c.p.transB }),
    tol: (c) => ({
      forward: 1e-5 * Math.sqrt(c.p.K),
      backward: 1e-5 * Math.sqrt(c.p.M * c.p.N * (c.p.batch ?? 1)),
    }),
  }, 10);
});
