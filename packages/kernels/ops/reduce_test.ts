import assert from "node:assert/strict";
import fc from "fast-check";
import { initGpu } from "../runtime/gpu.ts";
import { assertClose, randomArray, readF32, uploadF32 } from "./testing.ts";
import {
  chunking,
  columnReduceSubgroupWgsl,
  planReduce,
  sum,
  sumCpu,
  useSubgroups,
} from "./reduce.ts";
import { numel } from "./shape.ts";

const g = await initGpu();

/** Shapes whose sums need a second pass (more than 32 reduced, fewer than 65536 outputs). */
const CASES: { shape: number[]; axes: number[]; scale: number }[] = [
  { shape: [100003], axes: [0], scale: 1 }, // 3126 partials, not a multiple of any subgroup size
  { shape: [4, 9, 11, 13], axes: [0, 1, 2], scale: 1 / 396 }, // NHWC per-channel mean
  { shape: [16, 28, 28, 13], axes: [0, 1, 2], scale: 1 / 12544 }, // 392 partials a channel
  { shape: [3, 1000, 5], axes: [1], scale: 1 },
  { shape: [3, 5000, 5], axes: [1], scale: 1 },
  { shape: [70001, 3], axes: [0], scale: 0.5 },
  { shape: [6, 7, 33], axes: [0, 2], scale: 1 },
  { shape: [257, 300], axes: [0, 1], scale: 2 },
];

Deno.test("sum: the subgroup and serial second passes both match the CPU reference", async () => {
  assert.ok(g.info.subgroups, "this runtime requests subgroups; the subgroup path must run");
  let subgroupPasses = 0;
  for (const { shape, axes, scale } of CASES) {
    const p = planReduce(shape, axes);
    assert.ok(p.reduced > 32 && p.outputs < 1 << 16, `${shape} needs two passes`);
    // More than 32 partials an output: the subgroup kernel (else one serial pass) sums them.
    if (chunking(p).chunks > 32) subgroupPasses++;
    const data = randomArray(numel(shape), shape.length * 7 + numel(shape));
    const want = sumCpu(data, shape, axes, scale);
    const x = uploadF32(g, data);
    for (const subgroups of [false, true]) {
      const y = sum(g, x, shape, axes, scale, { subgroups });
      const got = await readF32(g, y, want.length);
      assertClose(got, want, 2e-5, `sum [${shape}] over [${axes}] subgroups=${subgroups}`);
      g.pool.release(y);
    }
    g.pool.release(x);
  }
  assert.equal(subgroupPasses, 5, "cases that reach the subgroup second pass");
});

Deno.test("sum: random shapes and axes agree on both paths", async () => {
  const arb = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 4 }).chain((
    shape,
  ) =>
    fc.record({
      shape: fc.constant(shape),
      axes: fc.subarray(shape.map((_, i) => i), { minLength: 1 }),
      seed: fc.integer({ min: 0, max: 1 << 20 }),
    })
  );
  await fc.assert(
    fc.asyncProperty(arb, async ({ shape, axes, seed }) => {
      const data = randomArray(numel(shape), seed);
      const want = sumCpu(data, shape, axes, 1);
      const x = uploadF32(g, data);
      for (const subgroups of [false, true]) {
        const y = sum(g, x, shape, axes, 1, { subgroups });
        assertClose(await readF32(g, y, want.length), want, 2e-5, `[${shape}]/[${axes}]`);
        g.pool.release(y);
      }
      g.pool.release(x);
    }),
    { numRuns: 25, seed: 7 },
  );
});

Deno.test("sum: the subgroup path is reproducible bit for bit", async () => {
  const shape = [50021, 3];
  const x = uploadF32(g, randomArray(numel(shape), 11, -3, 3));
  const runs: Float32Array[] = [];
  for (let i = 0; i < 3; i++) {
    const y = sum(g, x, shape, [0], 1, { subgroups: true });
    runs.push(await readF32(g, y, 3));
    g.pool.release(y);
  }
  assert.deepEqual(runs[1], runs[0]);
  assert.deepEqual(runs[2], runs[0]);
  g.pool.release(x);
});

Deno.test("useSubgroups: forced values win, default only on hardware adapters", () => {
  assert.equal(useSubgroups(g, true), true);
  assert.equal(useSubgroups(g, false), false);
  assert.equal(useSubgroups(g), g.info.subgroups && !g.info.isFallback);
  const none = { info: { ...g.info, subgroups: false } } as typeof g;
  assert.throws(() => useSubgroups(none, true), /no subgroups/);
  assert.equal(useSubgroups(none), false);
});

/** out[n*cols + c] = 2 * sum_r x[(n*rows + r)*cols + c] + 1 through the subgroup kernel. */
async function columnReduce(
  batches: number,
  rows: number,
  cols: number,
  workgroupSize: number,
  data: Float64Array,
): Promise<Float32Array> {
  const { code, workgroups } = columnReduceSubgroupWgsl({
    batches,
    rows,
    cols,
    decls: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;`,
    term: (i) => `x[${i}]`,
    finish: (acc, t) => `y[${t}] = 2.0 * ${acc} + 1.0;`,
    workgroupSize,
  });
  const x = uploadF32(g, data);
  const y = g.pool.acquire(batches * cols * 4);
  g.run(code, [x, y], workgroups);
  const out = await readF32(g, y, batches * cols);
  g.pool.release(x);
  g.pool.release(y);
  return out;
}

function columnReduceCpu(
  batches: number,
  rows: number,
  cols: number,
  data: Float64Array,
): Float64Array {
  const s = sumCpu(data, [batches, rows, cols], [1], 1);
  return s.map((v) => 2 * v + 1);
}

Deno.test("column reduction: any workgroup size (incl. not multiples of 32 or 8)", async () => {
  for (const T of [1, 3, 20, 24, 40, 100, 256]) {
    for (const [batches, rows, cols] of [[1, 1, 1], [2, 37, 3], [3, 100, 9], [1, 513, 17]]) {
      const data = randomArray(batches * rows * cols, T * 1000 + rows);
      const got = await columnReduce(batches, rows, cols, T, data);
      const want = columnReduceCpu(batches, rows, cols, data);
      assertClose(got, want, 1e-5, `T=${T} ${batches}x${rows}x${cols}`);
    }
  }
});

Deno.test("column reduction: random problems match the CPU reference", async () => {
  const arb = fc.record({
    batches: fc.integer({ min: 1, max: 4 }),
    rows: fc.integer({ min: 1, max: 300 }),
    cols: fc.integer({ min: 1, max: 70 }),
    T: fc.constantFrom(8, 12, 33, 64, 250),
    seed: fc.integer({ min: 0, max: 1 << 20 }),
  });
  await fc.assert(
    fc.asyncProperty(arb, async ({ batches, rows, cols, T, seed }) => {
      const data = randomArray(batches * rows * cols, seed);
      const got = await columnReduce(batches, rows, cols, T, data);
      assertClose(got, columnReduceCpu(batches, rows, cols, data), 1e-5, "column reduce");
    }),
    { numRuns: 20, seed: 3 },
  );
});

Deno.test("column reduction rejects bad workgroup sizes and empty problems", () => {
  const spec = {
    batches: 1,
    rows: 4,
    cols: 4,
    decls: "",
    term: (i: string) => i,
    finish: () => "",
  };
  assert.throws(() => columnReduceSubgroupWgsl({ ...spec, workgroupSize: 0 }), /workgroup size/);
  assert.throws(() => columnReduceSubgroupWgsl({ ...spec, workgroupSize: 257 }), /workgroup size/);
  assert.throws(() => columnReduceSubgroupWgsl({ ...spec, rows: 0 }), /empty/);
});
