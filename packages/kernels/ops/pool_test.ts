import assert from "node:assert/strict";
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { initGpu } from "../runtime/gpu.ts";
import {
  avgPool2d,
  avgPool2dBackward,
  avgPool2dBackwardCpu,
  avgPool2dCpu,
  type AvgPool2dParams,
  globalAvgPool,
  globalAvgPoolBackward,
  globalAvgPoolBackwardCpu,
  globalAvgPoolCpu,
  type HwReduceMode,
  hwReduceMode,
  hwReduceWgsl,
  maxPool2d,
  maxPool2dBackward,
  maxPool2dBackwardCpu,
  maxPool2dCpu,
  pool2dGeometry,
  poolOutSize,
} from "./pool.ts";
import {
  assertClose,
  finiteDiffVjp,
  randomArray,
  readF32,
  uploadF32,
  withSeed,
} from "./testing.ts";

const g = await initGpu();
await tf.setBackend("cpu");
const SEED = Number(Deno.env.get("FC_SEED") ?? 77031);

function check(name: string, run: () => Promise<void> | void): Promise<void> {
  return withSeed(name, SEED, run);
}

const poolArb = fc.record({
  N: fc.integer({ min: 1, max: 2 }),
  H: fc.integer({ min: 1, max: 7 }),
  W: fc.integer({ min: 1, max: 7 }),
  C: fc.integer({ min: 1, max: 5 }),
  kH: fc.integer({ min: 1, max: 3 }),
  kW: fc.integer({ min: 1, max: 3 }),
  sH: fc.integer({ min: 1, max: 3 }),
  sW: fc.integer({ min: 1, max: 3 }),
  padH: fc.integer({ min: 0, max: 1 }),
  padW: fc.integer({ min: 0, max: 1 }),
  include: fc.boolean(),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
}).map((r) => ({
  p: {
    N: r.N,
    H: r.H,
    W: r.W,
    C: r.C,
    kernel: [r.kH, r.kW] as [number, number],
    stride: [r.sH, r.sW] as [number, number],
    padding: [Math.min(r.padH, r.kH >> 1), Math.min(r.padW, r.kW >> 1)] as [number, number],
    countIncludePad: r.include,
  } as AvgPool2dParams,
  seed: r.seed,
})).filter(({ p }) => {
  const [kH, kW] = p.kernel as [number, number], [pH, pW] = p.padding as [number, number];
  return p.H + 2 * pH >= kH && p.W + 2 * pW >= kW;
});

const sizes = (p: AvgPool2dParams) => {
  const { OH, OW } = pool2dGeometry(p);
  return { inN: p.N * p.H * p.W * p.C, outN: p.N * OH * OW * p.C };
};

Deno.test("output-size helper follows PyTorch's floor formula", () => {
  assertClose(
    [poolOutSize(112, 3, 2, 1), poolOutSize(56, 2, 2, 0), poolOutSize(7, 3, 2, 1)],
    [
      56,
      28,
      4,
    ],
    0,
    "sizes",
  );
  let threw = false;
  try {
    pool2dGeometry({ N: 1, H: 4, W: 4, C: 1, kernel: 2, padding: 2 });
  } catch {
    threw = true;
  }
  if (!threw) throw new Error("padding above half the window must be rejected");
});

Deno.test("pool CPU backward references match central finite differences", async () => {
  await check("pool finite differences", () => {
    fc.assert(
      fc.property(poolArb, ({ p, seed }) => {
        const { inN, outN } = sizes(p);
        const x = randomArray(inN, seed), dy = randomArray(outN, seed + 1);
        const [dmax] = finiteDiffVjp((a) => maxPool2dCpu(a[0], p).y, [x], dy);
        assertClose(maxPool2dBackwardCpu(dy, maxPool2dCpu(x, p).argmax, p), dmax, 1e-6, "max");
        const [davg] = finiteDiffVjp((a) => avgPool2dCpu(a[0], p), [x], dy);
        assertClose(avgPool2dBackwardCpu(dy, p), davg, 1e-6, "avg");
        const gp = { N: p.N, H: p.H, W: p.W, C: p.C };
        const gdy = randomArray(p.N * p.C, seed + 2);
        const [dglob] = finiteDiffVjp((a) => globalAvgPoolCpu(a[0], gp), [x], gdy);
        assertClose(globalAvgPoolBackwardCpu(gdy, gp), dglob, 1e-6, "global avg");
      }),
      { seed: SEED, numRuns: 30 },
    );
  });
});

Deno.test("max/avg pool GPU forward and backward match the CPU reference", async () => {
  await check("pool gpu", async () => {
    await fc.assert(
      fc.asyncProperty(poolArb, async ({ p, seed }) => {
        const { inN, outN } = sizes(p);
        const x = randomArray(inN, seed, -2, 2), dy = randomArray(outN, seed + 1);
        const bx = uploadF32(g, x), bdy = uploadF32(g, dy);
        const mref = maxPool2dCpu(x, p);
        const { y, argmax } = maxPool2d(g, bx, p);
        const dxm = maxPool2dBackward(g, bdy, argmax, p);
        const ya = avgPool2d(g, bx, p);
        const dxa = avgPool2dBackward(g, bdy, p);
        assertClose(await readF32(g, y, outN), mref.y, 1e-6, "max y");
        const arg = new Int32Array(await g.read(argmax, outN * 4));
        assertClose(arg, mref.argmax, 0, "argmax");
        assertClose(
          await readF32(g, dxm, inN),
          maxPool2dBackwardCpu(dy, mref.argmax, p),
          1e-5,
          "max dx",
        );
        assertClose(await readF32(g, ya, outN), avgPool2dCpu(x, p), 1e-5, "avg y");
        assertClose(await readF32(g, dxa, inN), avgPool2dBackwardCpu(dy, p), 1e-5, "avg dx");
        for (const b of [bx, bdy, y, argmax, dxm, ya, dxa]) g.pool.release(b);
      }),
      { seed: SEED, numRuns: 14 },
    );
  });
});

Deno.test("ResNet stem max pool 3x3 s2 p1: padded cells never win over negative inputs", async () => {
  const p = { N: 1, H: 7, W: 6, C: 3, kernel: 3, stride: 2, padding: 1 };
  const x = randomArray(7 * 6 * 3, 11, -5, -1); // all negative: a zero pad would win if counted
  const bx = uploadF32(g, x);
  const { y, argmax } = maxPool2d(g, bx, p);
  const ref = maxPool2dCpu(x, p);
  const out = await readF32(g, y, ref.y.length);
  assertClose(out, ref.y, 1e-6, "y");
  if (out.some((v) => v >= -1)) throw new Error("a padded zero won the max");
  for (const b of [bx, y, argmax]) g.pool.release(b);
});

Deno.test("pooling matches TensorFlow.js maxPool/avgPool forward and gradients", async () => {
  const cases = [
    { N: 2, H: 7, W: 6, C: 3, kernel: 3, stride: 2, padding: 1 },
    { N: 1, H: 6, W: 5, C: 4, kernel: [2, 3], stride: [2, 1], padding: 0 },
    { N: 1, H: 8, W: 8, C: 2, kernel: 2, stride: 2, padding: 0 },
  ] as AvgPool2dParams[];
  for (const [k, p] of cases.entries()) {
    const { inN, outN } = sizes(p);
    const [kH, kW] = typeof p.kernel === "number" ? [p.kernel, p.kernel] : p.kernel;
    const st = (p.stride ?? p.kernel) as number | [number, number];
    const pad = p.padding as number;
    // tfjs computes a wrong output width for a numeric pad of 0 with unequal windows: use "valid".
    const tfPad = pad === 0 ? "valid" : pad;
    const x = randomArray(inN, 900 + k, -2, 2), dy = randomArray(outN, 950 + k);
    const { OH, OW } = pool2dGeometry(p);
    const tx = tf.tensor4d(Float32Array.from(x), [p.N, p.H, p.W, p.C]);
    const tdy = tf.tensor4d(Float32Array.from(dy), [p.N, OH, OW, p.C]);
    const fmax = (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, [kH, kW], st, tfPad);
    const favg = (t: tf.Tensor) => tf.avgPool(t as tf.Tensor4D, [kH, kW], st, tfPad);
    const tmax = fmax(tx), tavg = favg(tx);
    const [gmax] = tf.grads(fmax)([tx], tdy);
    const bx = uploadF32(g, x), bdy = uploadF32(g, dy);
    const { y, argmax } = maxPool2d(g, bx, p);
    const dxm = maxPool2dBackward(g, bdy, argmax, p);
    assertClose(await readF32(g, y, outN), await tmax.data(), 1e-6, `tf max y ${k}`);
    assertClose(await readF32(g, dxm, inN), await gmax.data(), 1e-5, `tf max dx ${k}`);
    // tfjs averages over the cells inside the image only: compare with countIncludePad=false.
    const ya = avgPool2d(g, bx, { ...p, countIncludePad: false });
    assertClose(await readF32(g, ya, outN), await tavg.data(), 1e-5, `tf avg y ${k}`);
    const rel = [bx, bdy, y, argmax, dxm, ya];
    if (pad === 0) {
      // tfjs's AvgPoolGrad divides by the full window even with padding, so compare unpadded.
      const [gavg] = tf.grads(favg)([tx], tdy);
      const dxa = avgPool2dBackward(g, bdy, p);
      assertClose(await readF32(g, dxa, inN), await gavg.data(), 1e-5, `tf avg dx ${k}`);
      rel.push(dxa);
      gavg.dispose();
    }
    tf.dispose([tx, tdy, tmax, tavg, gmax]);
    for (const b of rel) g.pool.release(b);
  }
});

Deno.test("global average pool (all three reductions) matches CPU and TensorFlow.js", async () => {
  const cases = [
    { N: 2, H: 3, W: 5, C: 7 },
    { N: 1, H: 1, W: 1, C: 3 },
    { N: 3, H: 4, W: 4, C: 37 }, // more than 32 channels: two channel blocks in the shared path
    { N: 2, H: 13, W: 11, C: 19 }, // 143 rows: more than the 32 subgroup-kernel lanes
  ];
  for (const [k, base] of cases.entries()) {
    const inN = base.N * base.H * base.W * base.C, outN = base.N * base.C;
    const x = randomArray(inN, 40 + k), dy = randomArray(outN, 60 + k);
    const tx = tf.tensor4d(Float32Array.from(x), [base.N, base.H, base.W, base.C]);
    const tdy = tf.tensor2d(Float32Array.from(dy), [base.N, base.C]);
    const f = (t: tf.Tensor) => tf.mean(t, [1, 2]);
    const ty = f(tx);
    const [gx] = tf.grads(f)([tx], tdy);
    for (const mode of [{ shared: false }, { shared: true }, { subgroups: true }]) {
      const p = { ...base, ...mode };
      const shared = JSON.stringify(mode);
      const bx = uploadF32(g, x), bdy = uploadF32(g, dy);
      const y = globalAvgPool(g, bx, p);
      const dx = globalAvgPoolBackward(g, bdy, p);
      const yo = await readF32(g, y, outN), dxo = await readF32(g, dx, inN);
      assertClose(yo, globalAvgPoolCpu(x, p), 1e-5, `gap y shared=${shared}`);
      assertClose(dxo, globalAvgPoolBackwardCpu(dy, p), 1e-6, `gap dx shared=${shared}`);
      assertClose(yo, await ty.data(), 1e-5, `tf gap y shared=${shared}`);
      assertClose(dxo, await gx.data(), 1e-5, `tf gap dx shared=${shared}`);
      for (const b of [bx, bdy, y, dx]) g.pool.release(b);
    }
    tf.dispose([tx, tdy, ty, gx]);
  }
});

Deno.test("hwReduceMode: forced subgroups win, shared alone rules them out", () => {
  assert.equal(hwReduceMode(g, { subgroups: true }), "subgroup");
  assert.equal(hwReduceMode(g, { subgroups: false, shared: true }), true);
  assert.equal(hwReduceMode(g, { shared: false }), false);
  assert.equal(hwReduceMode(g, { shared: true }), true);
  const hw = g.info.subgroups && !g.info.isFallback;
  assert.equal(hwReduceMode(g, {}), hw ? "subgroup" : !g.info.isFallback);
  const none = { info: { ...g.info, subgroups: false } } as typeof g;
  assert.throws(() => hwReduceMode(none, { subgroups: true }), /no subgroups/);
});

Deno.test("hwReduceWgsl: every variant computes sum(dy * x) per (n, c)", async () => {
  // The squeeze-excitation channel-scale gradient's form, incl. a subgroup workgroup of 20.
  const decls = `@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ds: array<f32>;`;
  const modes: [HwReduceMode, number | undefined][] = [
    [false, undefined],
    [true, undefined],
    ["subgroup", undefined],
    ["subgroup", 20],
    ["subgroup", 72],
  ];
  for (const [N, HW, C] of [[1, 1, 1], [2, 50, 3], [3, 37, 41], [1, 600, 9]]) {
    const dy = randomArray(N * HW * C, N + HW + C), x = randomArray(N * HW * C, C);
    const want = new Float64Array(N * C);
    for (let i = 0; i < dy.length; i++) {
      want[Math.floor(i / (HW * C)) * C + (i % C)] += dy[i] * x[i];
    }
    const bdy = uploadF32(g, dy), bx = uploadF32(g, x);
    for (const [mode, wg] of modes) {
      const { code, workgroups } = hwReduceWgsl(
        N,
        HW,
        C,
        decls,
        (i) => `dy[${i}] * x[${i}]`,
        (acc, t) => `ds[${t}] = ${acc};`,
        mode,
        wg,
      );
      const ds = g.pool.acquire(N * C * 4);
      g.run(code, [bdy, bx, ds], workgroups);
      assertClose(await readF32(g, ds, N * C), want, 2e-5, `${N}x${HW}x${C} ${mode} ${wg}`);
      g.pool.release(ds);
    }
    g.pool.release(bdy);
    g.pool.release(bx);
  }
});

Deno.test("avg pool count_include_pad divides by the full window (hand-computed)", async () => {
  // x = [[1, 2], [3, 4]], k=2, s=1, p=1: 3x3 output, every window divided by 4 (PyTorch default).
  const p = { N: 1, H: 2, W: 2, C: 1, kernel: 2, stride: 1, padding: 1 };
  const bx = uploadF32(g, [1, 2, 3, 4]);
  const y = avgPool2d(g, bx, p);
  const expected = [1, 3, 2, 4, 10, 6, 3, 7, 4].map((v) => v / 4);
  assertClose(await readF32(g, y, 9), expected, 1e-6, "include pad");
  const ye = avgPool2d(g, bx, { ...p, countIncludePad: false });
  assertClose(await readF32(g, ye, 9), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4], 1e-6, "exclude pad");
  for (const b of [bx, y, ye]) g.pool.release(b);
});
