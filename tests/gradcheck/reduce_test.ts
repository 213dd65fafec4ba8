import fc from "fast-check";
import { dataArb, gradcheck, shapeArb } from "./harness.ts";
import { sumCpu } from "../../packages/kernels/ops/reduce.ts";
import { numel } from "../../packages/kernels/ops/shape.ts";
import { mean, sum } from "../../packages/core/ops/reduce.ts";
import { expandCpu } from "./reference.ts";

const reduceCase = shapeArb(1, 4, 7).chain((shape) =>
  fc.record({
    shape: fc.constant(shape),
    axes: fc.subarray(shape.map((_, i) => i), { minLength: 1 }),
    keepDims: fc.boolean(),
    data: dataArb(numel(shape)),
  })
);

for (const op of ["sum", "mean"] as const) {
  Deno.test(`gradcheck ${op} over axes`, async () => {
    await gradcheck({
      name: op,
      cases: reduceCase,
      inputs: (c) => [{ shape: c.shape, data: c.data }],
      cpu: (c, [x]) => sumCpu(x, c.shape, c.axes, op === "mean" ? 1 / count(c) : 1),
      cpuVjp: (c, [_x], dy) => [expandCpu(dy, c.shape, c.axes, op === "mean" ? 1 / count(c) : 1)],
      gpu: (c, [x]) => (op === "sum" ? sum : mean)(x, c.axes, c.keepDims),
    });
  });
}

function count(c: { shape: number[]; axes: number[] }): number {
  return c.axes.reduce((n, a) => n * c.shape[a], 1);
}

Deno.test("sum over a long axis takes the two-pass path and stays exact", async () => {
  // 3 outputs x 40000 reduced elements: chunked partial sums, then a second reduction.
  await gradcheck({
    name: "sum-long",
    cases: fc.record({ data: dataArb(3 * 40000, -1, 1) }),
    inputs: (c) => [{ shape: [40000, 3], data: c.data }],
    cpu: (_c, [x]) => sumCpu(x, [40000, 3], [0]),
    cpuVjp: (_c, [_x], dy) => [expandCpu(dy, [40000, 3], [0], 1)],
    gpu: (_c, [x]) => sum(x, 0),
    noFiniteDiff: true,
    tol: () => ({ forward: 1e-4, backward: 1e-6 }),
  }, 2);
});
