import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { initGpu } from "../runtime/gpu.ts";
import { assertClose, finiteDiffVjp, randomArray, readF32, uploadF32 } from "./testing.ts";
import { activationCpu, gemm, type GemmConfig } from "./gemm.ts";
import {
  matmul,
  matmulBackward,
  matmulBackwardCpu,
  matmulCpu,
  type MatmulParams,
  matmulSpec,
} from "./matmul.ts";

const g = await initGpu();

/** Small tiles so that tiny shapes still cross tile edges; both variants. */
const CONFIGS: GemmConfig[] = [
  { variant: "register", BM: 8, BN: 8, BK: 3, TM: 2, TN: 2 },
  { variant: "shared", BM: 8, BN: 8, BK: 5, TM: 4, TN: 4 },
  { variant: "shared", BM: 16, BN: 8, BK: 4, TM: 4, TN: 4 },
];

const paramsArb = fc.record({
  M: fc.integer({ min: 1, max: 19 }),
  N: fc.integer({ min: 1, max: 19 }),
  K: fc.integer({ min: 1, max: 23 }),
  batch: fc.integer({ min: 1, max: 3 }),
  transA: fc.boolean(),
  transB: fc.boolean(),
  batchA: fc.boolean(),
  batchB: fc.boolean(),
});

const sizes = (p: MatmulParams) => {
  const batch = p.batch ?? 1;
  return {
    a: (p.batchA ?? true ? batch : 1) * p.M * p.K,
    b: (p.batchB ?? true ? batch : 1) * p.K * p.N,
    c: batch * p.M * p.N,
  };
};

const maxAbs = (x: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
};

/** Max abs error allowed for f32 sums of `terms` products of values in [-1, 1]. */
const tolFor = (terms: number, ref: ArrayLike<number>) => 2e-7 * (terms + 8) * (1 + maxAbs(ref));

Deno.test("matmul CPU backward matches central finite differences", () => {
  fc.assert(
    fc.property(paramsArb, fc.integer(), (p, seed) => {
      const s = sizes(p);
      const a = randomArray(s.a, seed), b = randomArray(s.b, seed + 1);
      const dc = randomArray(s.c, seed + 2);
      const [fa, fb] = finiteDiffVjp(([x, y]) => matmulCpu(x, y, p), [a, b], dc);
      const { da, db } = matmulBackwardCpu(a, b, dc, p);
      assertClose(da, fa, 1e-6, "da");
      assertClose(db, fb, 1e-6, "db");
    }),
    { seed: 11, numRuns: 40 },
  );
});

Deno.test("matmul GPU forward and backward match the CPU reference (both variants)", async () => {
  const g0 = g.pool.bytesInUse;
  await fc.assert(
    fc.asyncProperty(
      paramsArb,
      fc.integer({ min: 0, max: CONFIGS.length - 1 }),
      fc.integer(),
      async (p, ci, seed) => {
        const config = CONFIGS[ci];
        const s = sizes(p);
        const a = randomArray(s.a, seed), b = randomArray(s.b, seed + 1);
        const dc = randomArray(s.c, seed + 2);
        const ga = uploadF32(g, a), gb = uploadF32(g, b), gdc = uploadF32(g, dc);
        const gc = matmul(g, ga, gb, p, config);
        const { da, db } = matmulBackward(g, ga, gb, gdc, p, config);
        const c = matmulCpu(a, b, p);
        const ref = matmulBackwardCpu(a, b, dc, p);
        const label = `${JSON.stringify(p)} ${JSON.stringify(config)} seed ${seed}`;
        assertClose(await readF32(g, gc, s.c), c, tolFor(p.K, c), `C ${label}`);
        const batch = p.batch ?? 1;
        assertClose(await readF32(g, da, s.a), ref.da, tolFor(p.N * batch, ref.da), `dA ${label}`);
        assertClose(await readF32(g, db, s.b), ref.db, tolFor(p.M * batch, ref.db), `dB ${label}`);
        for (const buf of [ga, gb, gdc, gc, da, db]) g.pool.release(buf);
      },
    ),
    { seed: 7, numRuns: 30 },
  );
  if (g.pool.bytesInUse !== g0) throw new Error("matmul test leaked pooled buffers");
});

Deno.test("matmul default config (adapter choice) handles sizes beyond one tile", async () => {
  const p: MatmulParams = { M: 70, N: 45, K: 130, batch: 2, transB: true };
  const s = sizes(p);
  const a = randomArray(s.a, 1), b = randomArray(s.b, 2), dc = randomArray(s.c, 3);
  const ga = uploadF32(g, a), gb = uploadF32(g, b), gdc = uploadF32(g, dc);
  const gc = matmul(g, ga, gb, p);
  const { da, db } = matmulBackward(g, ga, gb, gdc, p);
  const c = matmulCpu(a, b, p), ref = matmulBackwardCpu(a, b, dc, p);
  assertClose(await readF32(g, gc, s.c), c, tolFor(p.K, c), "C");
  assertClose(await readF32(g, da, s.a), ref.da, tolFor(p.N * 2, ref.da), "dA");
  assertClose(await readF32(g, db, s.b), ref.db, tolFor(p.M * 2, ref.db), "dB");
  for (const buf of [ga, gb, gdc, gc, da, db]) g.pool.release(buf);
});

Deno.test("matmul fused epilogue: bias, activation, residual, accumulate", async () => {
  const acts = ["none", "relu", "relu6", "silu"] as const;
  for (const [ci, config] of CONFIGS.entries()) {
    for (const [ai, activation] of acts.entries()) {
      const p: MatmulParams = { M: 9, N: 11, K: 7, batch: 2, transA: ai % 2 === 1 };
      const s = sizes(p);
      const a = randomArray(s.a, ci * 10 + ai, -2, 2), b = randomArray(s.b, 5, -2, 2);
      const bias = randomArray(p.N, 6, -3, 3), res = randomArray(s.c, 7, -3, 3);
      const prev = randomArray(s.c, 8);
      const [ga, gb, gbias, gres] = [a, b, bias, res].map((x) => uploadF32(g, x));
      const out = uploadF32(g, prev);
      const spec = matmulSpec(p, { bias: true, residual: true, activation, accumulate: true });
      const got = gemm(g, spec, [ga, gb, gbias, gres], { config, out });
      if (got !== out) throw new Error("accumulating GEMM must write into `out`");
      const c = matmulCpu(a, b, p);
      const want = c.map((v, i) => prev[i] + activationCpu(activation, v + bias[i % p.N] + res[i]));
      assertClose(
        await readF32(g, out, s.c),
        want,
        1e-5,
        `${activation} ${JSON.stringify(config)}`,
      );
      for (const buf of [ga, gb, gbias, gres, out]) g.pool.release(buf);
    }
  }
});

Deno.test("matmul forward and backward agree with TensorFlow.js", async () => {
  await tf.setBackend("cpu");
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        M: fc.integer({ min: 1, max: 12 }),
        N: fc.integer({ min: 1, max: 12 }),
        K: fc.integer({ min: 1, max: 12 }),
        batch: fc.integer({ min: 1, max: 3 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
      }),
      fc.integer(),
      async (p, seed) => {
        const s = sizes(p);
        const a = randomArray(s.a, seed), b = randomArray(s.b, seed + 1);
        const dc = randomArray(s.c, seed + 2);
        const aShape = p.transA ? [p.batch, p.K, p.M] : [p.batch, p.M, p.K];
        const bShape = p.transB ? [p.batch, p.N, p.K] : [p.batch, p.K, p.N];
        const ta = tf.tensor(Float32Array.from(a), aShape);
        const tb = tf.tensor(Float32Array.from(b), bShape);
        const tdc = tf.tensor(Float32Array.from(dc), [p.batch, p.M, p.N]);
        const f = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, p.transA, p.transB);
        const tc = f(ta, tb);
        const [tda, tdb] = tf.grads(f)([ta, tb], tdc);
        const ga = uploadF32(g, a), gb = uploadF32(g, b), gdc = uploadF32(g, dc);
        const gc = matmul(g, ga, gb, p);
        const { da, db } = matmulBackward(g, ga, gb, gdc, p);
        const label = `${JSON.stringify(p)} seed ${seed}`;
        const tc32 = tc.dataSync(), tda32 = tda.dataSync(), tdb32 = tdb.dataSync();
        assertClose(await readF32(g, gc, s.c), tc32, tolFor(p.K, tc32), `C ${label}`);
        assertClose(await readF32(g, da, s.a), tda32, tolFor(p.N * p.batch, tda32), `dA ${label}`);
        assertClose(await readF32(g, db, s.b), tdb32, tolFor(p.M * p.batch, tdb32), `dB ${label}`);
        tf.dispose([ta, tb, tdc, tc, tda, tdb]);
        for (const buf of [ga, gb, gdc, gc, da, db]) g.pool.release(buf);
      },
    ),
    { seed: 3, numRuns: 12 },
  );
});
