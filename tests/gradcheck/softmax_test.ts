import fc from "fast-check";
import { dataArb, gradcheck } from "./harness.ts";
import * as ref from "../../packages/kernels/ops/softmax.ts";
import { crossEntropy, logSoftmax } from "../../packages/core/ops/softmax.ts";
import { tensor } from "../../packages/core/tensor.ts";

Deno.test("gradcheck logSoftmax over the last axis", async () => {
  const cases = fc.record({
    rows: fc.integer({ min: 1, max: 9 }),
    cols: fc.integer({ min: 1, max: 13 }),
  })
    .chain((s) =>
      fc.record({
        rows: fc.constant(s.rows),
        cols: fc.constant(s.cols),
        data: dataArb(s.rows * s.cols, -4, 4),
      })
    );
  await gradcheck({
    name: "logSoftmax",
    cases,
    inputs: (c) => [{ shape: [c.rows, c.cols], data: c.data }],
    cpu: (c, [x]) => ref.logSoftmaxCpu(x, c.rows, c.cols),
    cpuVjp: (c, [x], dy) => [ref.logSoftmaxBackwardCpu(x, dy, c.rows, c.cols)],
    gpu: (_c, [x]) => logSoftmax(x),
  });
});

Deno.test("gradcheck softmax cross-entropy with class weights and label smoothing", async () => {
  const cases = fc.record({
    rows: fc.integer({ min: 1, max: 300 }),
    classes: fc.integer({ min: 2, max: 9 }),
    smoothing: fc.constantFrom(0, 0.1, 0.25),
    weighted: fc.boolean(),
  }).chain((s) =>
    fc.record({
      ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, fc.constant(v)])),
      logits: dataArb(s.rows * s.classes, -4, 4),
      labels: fc.array(fc.integer({ min: 0, max: s.classes - 1 }), {
        minLength: s.rows,
        maxLength: s.rows,
      }),
      weights: dataArb(s.classes, 0.25, 3),
    }) as fc.Arbitrary<{
      rows: number;
      classes: number;
      smoothing: number;
      weighted: boolean;
      logits: Float64Array;
      labels: number[];
      weights: Float64Array;
    }>
  );
  await gradcheck({
    name: "crossEntropy",
    cases,
    inputs: (c) => [
      { shape: [c.rows, c.classes], data: c.logits },
      { shape: [c.rows], data: Float64Array.from(c.labels), int: true },
    ],
    cpu: (c, [x, y]) =>
      Float64Array.of(
        ref.crossEntropyCpu(x, Int32Array.from(y), c.weighted ? c.weights : null, {
          rows: c.rows,
          classes: c.classes,
          labelSmoothing: c.smoothing,
        }),
      ),
    cpuVjp: (c, [x, y], dy) => [
      ref.crossEntropyBackwardCpu(x, Int32Array.from(y), c.weighted ? c.weights : null, dy[0], {
        rows: c.rows,
        classes: c.classes,
        labelSmoothing: c.smoothing,
      }),
      null,
    ],
    gpu: (c, [x, y]) =>
      crossEntropy(x, y, {
        labelSmoothing: c.smoothing,
        weights: c.weighted ? tensor(Float32Array.from(c.weights)) : undefined,
      }),
  });
});
