import assert from "node:assert/strict";
import fc from "fast-check";
import { initGpu } from "../runtime/gpu.ts";
import { assertClose, randomArray, readF32, uploadF32 } from "./testing.ts";
import {
  crossEntropy,
  crossEntropyBackward,
  crossEntropyBackwardCpu,
  crossEntropyCpu,
  type CrossEntropyParams,
  crossEntropyWgsl,
  logSoftmax,
  logSoftmaxBackward,
  logSoftmaxBackwardCpu,
  logSoftmaxCpu,
  type SoftmaxOptions,
} from "./softmax.ts";

const g = await initGpu();

const VARIANTS: SoftmaxOptions[] = [
  { subgroups: false },
  { subgroups: true },
  { subgroups: true, workgroupSize: 20 }, // partial subgroups, not a multiple of 32
  { subgroups: true, workgroupSize: 256 },
];

Deno.test("logSoftmax forward and backward: serial and subgroup kernels match the CPU", async () => {
  assert.ok(g.info.subgroups, "this runtime requests subgroups; the subgroup path must run");
  const before = g.pool.bytesInUse;
  for (const [rows, cols] of [[1, 1], [3, 7], [5, 37], [2, 1000], [70, 65]]) {
    const data = randomArray(rows * cols, rows * 31 + cols, -6, 6);
    const dyData = randomArray(rows * cols, cols);
    const wantY = logSoftmaxCpu(data, rows, cols);
    const wantDx = logSoftmaxBackwardCpu(data, dyData, rows, cols);
    const x = uploadF32(g, data), dy = uploadF32(g, dyData);
    for (const opts of VARIANTS) {
      const label = `${rows}x${cols} ${JSON.stringify(opts)}`;
      const y = logSoftmax(g, x, rows, cols, opts);
      assertClose(await readF32(g, y, rows * cols), wantY, 1e-5, `y ${label}`);
      const dx = logSoftmaxBackward(g, y, dy, rows, cols, opts);
      assertClose(await readF32(g, dx, rows * cols), wantDx, 1e-5, `dx ${label}`);
      g.pool.release(y);
      g.pool.release(dx);
    }
    g.pool.release(x);
    g.pool.release(dy);
  }
  if (g.pool.bytesInUse !== before) throw new Error("logSoftmax test leaked pooled buffers");
});

Deno.test("logSoftmax subgroup kernel: a row of one huge logit among many tiny ones", async () => {
  // The max has to reach every invocation: otherwise exp overflows to inf and y is NaN.
  const rows = 2, cols = 300;
  const data = new Float64Array(rows * cols).fill(-50);
  data[123] = 80;
  data[cols + 299] = 90;
  const x = uploadF32(g, data);
  const y = logSoftmax(g, x, rows, cols, { subgroups: true, workgroupSize: 24 });
  assertClose(await readF32(g, y, rows * cols), logSoftmaxCpu(data, rows, cols), 1e-5, "y");
  g.pool.release(x);
  g.pool.release(y);
});

async function checkCrossEntropy(
  p: CrossEntropyParams,
  seed: number,
  useWeights: boolean,
): Promise<void> {
  const data = randomArray(p.rows * p.classes, seed, -4, 4);
  const labels = Int32Array.from(
    randomArray(p.rows, seed + 1, 0, p.classes),
    (v) => Math.min(p.classes - 1, Math.floor(v)),
  );
  const weights = useWeights ? randomArray(p.classes, seed + 2, 0.2, 2) : null;
  const want = crossEntropyCpu(data, labels, weights, p);
  let wsum = 0;
  for (const t of labels) wsum += weights ? weights[t] : 1;
  const wantDx = crossEntropyBackwardCpu(data, labels, weights, 0.75, p);
  const x = uploadF32(g, data), lab = g.upload(labels);
  const w = weights ? uploadF32(g, weights) : null, dl = uploadF32(g, [0.75]);
  const label = `${JSON.stringify(p)} weighted=${useWeights}`;
  const y = crossEntropy(g, x, lab, w, p);
  const [loss, ws] = await readF32(g, y, 2);
  assertClose([loss, ws], [want, wsum], 2e-5, `loss ${label}`);
  const dx = crossEntropyBackward(g, x, lab, w, y, dl, p);
  assertClose(await readF32(g, dx, data.length), wantDx, 1e-5, `dx ${label}`);
  for (const b of [x, lab, dl, y, dx, ...(w ? [w] : [])]) g.pool.release(b);
}

Deno.test("cross-entropy loss: barrier-tree and subgroup reductions match the CPU", async () => {
  const before = g.pool.bytesInUse;
  const shapes = [[1, 3], [7, 7], [300, 7], [1000, 5], [33, 40]];
  for (const [k, [rows, classes]] of shapes.entries()) {
    for (const subgroups of [false, true]) {
      for (const workgroupSize of [undefined, 20, 100, 1]) {
        const p = { rows, classes, labelSmoothing: k % 2 ? 0.1 : 0, subgroups, workgroupSize };
        await checkCrossEntropy(p, 10 * k + (workgroupSize ?? 0), k % 3 === 0);
      }
    }
  }
  if (g.pool.bytesInUse !== before) throw new Error("cross-entropy test leaked pooled buffers");
});

Deno.test("cross-entropy: random batches agree on both reductions", async () => {
  const arb = fc.record({
    rows: fc.integer({ min: 1, max: 600 }),
    classes: fc.integer({ min: 1, max: 12 }),
    eps: fc.constantFrom(0, 0.2),
    weighted: fc.boolean(),
    wg: fc.constantFrom(7, 32, 48, 256),
    seed: fc.integer({ min: 0, max: 1 << 20 }),
  });
  await fc.assert(
    fc.asyncProperty(arb, async ({ rows, classes, eps, weighted, wg, seed }) => {
      for (const subgroups of [false, true]) {
        const p = { rows, classes, labelSmoothing: eps, subgroups, workgroupSize: wg };
        await checkCrossEntropy(p, seed, weighted);
      }
    }),
    { numRuns: 12, seed: 9 },
  );
});

Deno.test("softmax kernels reject bad workgroup sizes", () => {
  assert.throws(() => crossEntropyWgsl({ rows: 2, classes: 2, workgroupSize: 0 }), /workgroup/);
  assert.throws(() => crossEntropyWgsl({ rows: 2, classes: 2, workgroupSize: 300 }), /workgroup/);
  const x = g.pool.acquire(16);
  assert.throws(() => logSoftmax(g, x, 2, 2, { subgroups: true, workgroupSize: 1.5 }), /workgroup/);
  g.pool.release(x);
});

Deno.test("subgroup cross-entropy loss and log-softmax are reproducible bit for bit", async () => {
  const rows = 999, classes = 70;
  const p = { rows, classes, labelSmoothing: 0.1, subgroups: true, workgroupSize: 100 };
  const x = uploadF32(g, randomArray(rows * classes, 5, -5, 5));
  const lab = g.upload(Int32Array.from({ length: rows }, (_, i) => (i * 7) % classes));
  const runs: Float32Array[] = [];
  for (let i = 0; i < 3; i++) {
    const y = crossEntropy(g, x, lab, null, p);
    const ls = logSoftmax(g, x, rows, classes, { subgroups: true });
    runs.push(Float32Array.from([...await readF32(g, y, 2), ...await readF32(g, ls, 500)]));
    g.pool.release(y);
    g.pool.release(ls);
  }
  assert.deepEqual(runs[1], runs[0]);
  assert.deepEqual(runs[2], runs[0]);
  g.pool.release(x);
  g.pool.release(lab);
});
