import fc from "fast-check";
import { dataArb, gradcheck, shapeArb } from "./harness.ts";
import * as ref from "../../packages/kernels/ops/elementwise.ts";
import { numel } from "../../packages/kernels/ops/shape.ts";
import * as ops from "../../packages/core/ops/elementwise.ts";
import type { Tensor } from "../../packages/core/tensor.ts";

/** Two shapes that broadcast: b drops leading dims and sets some dims to 1. */
const broadcastPair = shapeArb(1, 4, 6).chain((out) =>
  fc.tuple(
    fc.constant(out),
    fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    fc.integer({ min: 0, max: out.length - 1 }),
    fc.boolean(),
  ).map(([o, ones, drop, swap]) => {
    const b = o.map((d, i) => (ones[i] ? 1 : d)).slice(drop);
    return swap ? { a: b, b: o } : { a: o, b };
  })
);

const binaryOps = ["add", "sub", "mul", "div"] as const;

for (const op of binaryOps) {
  Deno.test(`gradcheck ${op} with broadcasting`, async () => {
    const cases = broadcastPair.chain(({ a, b }) =>
      fc.record({
        a: fc.constant(a),
        b: fc.constant(b),
        da: dataArb(numel(a)),
        // Divisors stay away from zero.
        db: dataArb(numel(b), -2, 2, op === "div" ? [0] : [], 0.5),
      })
    );
    await gradcheck({
      name: op,
      cases,
      inputs: (c) => [{ shape: c.a, data: c.da }, { shape: c.b, data: c.db }],
      cpu: (c, [x, y]) => ref.binaryCpu(op, x, c.a, y, c.b),
      cpuVjp: (c, [x, y], dy) => ref.binaryBackwardCpu(op, x, c.a, y, c.b, dy),
      gpu: (_c, [x, y]) => ops[op](x, y),
    });
  });
}

interface UnaryCase {
  shape: number[];
  data: Float64Array;
}

function unaryCheck(
  name: string,
  u: ref.Unary,
  fn: (x: Tensor) => Tensor,
  range: [number, number] = [-3, 3],
  kinks: number[] = [],
) {
  Deno.test(`gradcheck ${name}`, async () => {
    const cases: fc.Arbitrary<UnaryCase> = shapeArb(1, 4, 9).chain((shape) =>
      fc.record({ shape: fc.constant(shape), data: dataArb(numel(shape), ...range, kinks) })
    );
    await gradcheck({
      name,
      cases,
      inputs: (c) => [{ shape: c.shape, data: c.data }],
      cpu: (_c, [x]) => ref.unaryCpu(u, x),
      cpuVjp: (_c, [x], dy) => [ref.unaryBackwardCpu(u, x, dy)],
      gpu: (_c, [x]) => fn(x),
    });
  });
}

unaryCheck("relu", { op: "relu" }, ops.relu, [-3, 3], [0]);
unaryCheck("relu6", { op: "relu6" }, ops.relu6, [-2, 8], [0, 6]);
unaryCheck("sigmoid", { op: "sigmoid" }, ops.sigmoid, [-6, 6]);
unaryCheck("silu", { op: "silu" }, ops.silu, [-6, 6]);
unaryCheck("exp", { op: "exp" }, ops.exp);
unaryCheck("log", { op: "log" }, ops.log, [0.2, 4]);
unaryCheck("sqrt", { op: "sqrt" }, ops.sqrt, [0.2, 4]);
unaryCheck("square", { op: "square" }, ops.square);
unaryCheck("neg", { op: "neg" }, ops.neg);
unaryCheck("mulScalar", { op: "scale", c: -1.75 }, (x) => ops.mulScalar(x, -1.75));
unaryCheck("addScalar", { op: "shift", c: 0.625 }, (x) => ops.addScalar(x, 0.625));
unaryCheck("divScalar", { op: "scale", c: 1 / 3 }, (x) => ops.divScalar(x, 3));
unaryCheck("subScalar", { op: "shift", c: -2.5 }, (x) => ops.subScalar(x, 2.5));
