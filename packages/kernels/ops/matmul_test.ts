import { throws } from "node:assert/strict";
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { initGpu } from "../runtime/gpu.ts";
import { assertClose, finiteDiffVjp, randomArray, readF32, uploadF32 } from "./testing.ts";
import { float16ToFloat32, float32ToFloat16 } from "../../core/io/f16.ts";
import {
  activationCpu,
  castF16ToF32,
  castF32ToF16,
  gemm,
  type GemmConfig,
  gemmWgsl,
} from "./gemm.ts";
import {
  matmul,
  matmulBackward,
  matmulBackwardCpu,
  matmulBackwardSpecs,
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

/** GPU forward and backward of one matmul against the f64 references. */
async function checkForwardBackward(p: MatmulParams, config: GemmConfig, seed: number) {
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
}

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
      (p, ci, seed) => checkForwardBackward(p, CONFIGS[ci], seed),
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

/** Configs whose K step is a multiple of 4 (vec4 reads along k) or not, both variants. */
const VEC_CONFIGS: GemmConfig[] = [
  { variant: "register", BM: 8, BN: 8, BK: 3, TM: 2, TN: 2 },
  { variant: "shared", BM: 8, BN: 8, BK: 5, TM: 4, TN: 4 },
  { variant: "shared", BM: 16, BN: 8, BK: 4, TM: 4, TN: 4 },
  { variant: "shared", BM: 8, BN: 16, BK: 8, TM: 4, TN: 4 },
];

/** Sizes that are mostly multiples of 4 (vec4 loads), sometimes odd. */
const dimArb = fc.oneof(
  fc.integer({ min: 1, max: 6 }).map((x) => 4 * x),
  fc.integer({ min: 1, max: 19 }),
);

/**
 * Fixed cases that reach every vec4 path whatever the random draws: all transposes, K a
 * multiple of 4 but not of BK (masked 4x4 blocks along k), K odd (masked row/column vec4),
 * shared operands (folded batch in the backward GEMMs).
 */
const vecExamples = (numConfigs: number) => {
  type Full = Required<Omit<MatmulParams, "precision">>;
  const out: [Full, number, number][] = [];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const base = { batch: 2, transA, transB, batchA: true, batchB: true };
      out.push([{ ...base, M: 12, N: 8, K: 12 }, 3, 1]);
      out.push([{ ...base, M: 8, N: 12, K: 7 }, 2, 2]);
      out.push([{ ...base, M: 8, N: 16, K: 20, batchA: false }, 2, 3]);
      out.push([{ ...base, M: 16, N: 4, K: 8, batchB: false }, 3, 4]);
    }
  }
  return out.filter(([, ci]) => ci < numConfigs);
};

/** Whether the generated WGSL reads `name` as an array of vec4 of `type`. */
const readsVec4 = (code: string, name: string, type = "f32") =>
  code.includes(`var<storage, read> ${name}: array<vec4<${type}>>;`);

Deno.test("matmul vec4 loads: declared when the contiguous size is a multiple of 4", () => {
  const shared: GemmConfig = { variant: "shared", BM: 16, BN: 8, BK: 4, TM: 4, TN: 4 };
  const sharedBk5: GemmConfig = { variant: "shared", BM: 8, BN: 8, BK: 5, TM: 4, TN: 4 };
  const reg = VEC_CONFIGS[0];
  // [params, config, A read as vec4, B read as vec4]
  const cases: [MatmulParams, GemmConfig, boolean, boolean][] = [
    [{ M: 8, N: 8, K: 8 }, shared, true, true],
    [{ M: 8, N: 8, K: 8, transA: true, transB: true }, shared, true, true],
    [{ M: 5, N: 8, K: 8, transA: true }, shared, false, true],
    [{ M: 8, N: 8, K: 6 }, shared, false, true],
    [{ M: 8, N: 6, K: 8, transB: true }, shared, true, true],
    [{ M: 8, N: 6, K: 8 }, shared, true, false],
    // Along k a K step that is not a multiple of 4 keeps scalar reads; along rows it does not.
    [{ M: 8, N: 8, K: 8, transA: true }, sharedBk5, true, true],
    [{ M: 8, N: 8, K: 8 }, sharedBk5, false, true],
    [{ M: 8, N: 8, K: 8 }, reg, false, false],
  ];
  for (const [p, config, va, vb] of cases) {
    const code = gemmWgsl(matmulSpec(p), config);
    const label = `${JSON.stringify(p)} ${JSON.stringify(config)}`;
    if (readsVec4(code, "a") !== va) throw new Error(`A vec4 should be ${va}: ${label}`);
    if (readsVec4(code, "b") !== vb) throw new Error(`B vec4 should be ${vb}: ${label}`);
    if (!va && !code.includes("var<storage, read> a: array<f32>;")) {
      throw new Error(`A should be read as scalars: ${label}`);
    }
  }
  // The backward GEMMs read dC as vec4 too (N % 4 == 0), also with a shared (folded) operand.
  const { da, db } = matmulBackwardSpecs({ M: 8, N: 12, K: 4, batch: 2, batchB: false });
  if (!readsVec4(gemmWgsl(da, shared), "dc") || !readsVec4(gemmWgsl(db, shared), "dc")) {
    throw new Error("backward GEMMs should read dc as vec4");
  }
});

Deno.test("matmul vec4 loads match the CPU reference, forward and backward", async () => {
  const g0 = g.pool.bytesInUse;
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        M: dimArb,
        N: dimArb,
        K: dimArb,
        batch: fc.integer({ min: 1, max: 3 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
        batchA: fc.boolean(),
        batchB: fc.boolean(),
      }),
      fc.integer({ min: 0, max: VEC_CONFIGS.length - 1 }),
      fc.integer(),
      (p, ci, seed) => checkForwardBackward(p, VEC_CONFIGS[ci], seed),
    ),
    { seed: 19, numRuns: 16, examples: vecExamples(VEC_CONFIGS.length) },
  );
  if (g.pool.bytesInUse !== g0) throw new Error("matmul test leaked pooled buffers");
});

Deno.test("matmul f16 storage: f16 inputs, f32 accumulation (both variants, odd sizes)", async () => {
  if (!g.info.f16) {
    // Without shader-f16 the option must be refused, not silently computed in f32.
    const buf = uploadF32(g, [1, 2, 3, 4]);
    throws(() => matmul(g, buf, buf, { M: 2, N: 2, K: 1, precision: "f16-storage" }), /f16/);
    g.pool.release(buf);
    return;
  }
  const g0 = g.pool.bytesInUse;
  const configs: (GemmConfig | undefined)[] = [...VEC_CONFIGS, undefined];
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        M: dimArb,
        N: dimArb,
        K: dimArb,
        batch: fc.integer({ min: 1, max: 2 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
        batchA: fc.boolean(),
        batchB: fc.boolean(),
      }),
      fc.integer({ min: 0, max: configs.length - 1 }),
      fc.integer(),
      async (p, ci, seed) => {
        const config = configs[ci];
        const s = sizes(p);
        // Values of magnitude up to 4 lose bits when rounded to f16: the reference uses the
        // rounded values, so a GEMM reading f32 (or rounding differently) would fail.
        const a = randomArray(s.a, seed, -4, 4), b = randomArray(s.b, seed + 1, -4, 4);
        const ah = float32ToFloat16(Float32Array.from(a));
        const bh = float32ToFloat16(Float32Array.from(b));
        const ga = g.upload(ah), gb = g.upload(bh);
        const gc = matmul(g, ga, gb, { ...p, precision: "f16-storage" }, config);
        const c = matmulCpu(
          Float64Array.from(float16ToFloat32(ah)),
          Float64Array.from(float16ToFloat32(bh)),
          p,
        );
        const label = `${JSON.stringify(p)} ${JSON.stringify(config)} seed ${seed}`;
        assertClose(await readF32(g, gc, s.c), c, tolFor(p.K, c), `C ${label}`);
        for (const buf of [ga, gb, gc]) g.pool.release(buf);
      },
    ),
    { seed: 23, numRuns: 16, examples: vecExamples(VEC_CONFIGS.length) },
  );
  if (g.pool.bytesInUse !== g0) throw new Error("f16 matmul test leaked pooled buffers");
  // The f16 shader declares f16 storage (vec4 where the size allows) and never f32 inputs.
  const code = gemmWgsl(
    matmulSpec({ M: 8, N: 7, K: 12, precision: "f16-storage" }),
    VEC_CONFIGS[2],
  );
  if (!code.startsWith("enable f16;") || !readsVec4(code, "a", "f16")) {
    throw new Error(`expected an f16 shader with vec4<f16> A:\n${code}`);
  }
  if (!code.includes("var<storage, read> b: array<f16>;")) throw new Error("B should be f16");
  throws(
    () =>
      matmulBackward(g, gdummy(), gdummy(), gdummy(), {
        M: 1,
        N: 1,
        K: 1,
        precision: "f16-storage",
      }),
    /f32 only/,
  );
});

const gdummy = () => {
  const b = uploadF32(g, [0]);
  g.pool.release(b);
  return b;
};

Deno.test("f32 <-> f16 cast kernels round to a neighbouring f16 and back exactly", async () => {
  for (const n of [1, 2, 7, 1000, 1001]) {
    // Mixed magnitudes, including values that need rounding, subnormals and exact halves.
    const x = randomArray(n, n).map((v, i) => v * [1, 100, 1e-5, 3e4][i % 4]);
    x[0] = 0.1;
    if (n > 1) x[1] = 1 + 2 ** -11; // a tie: rounds to even (1.0)
    const gx = uploadF32(g, x);
    const gh = castF32ToF16(g, gx, n);
    const bits = new Uint16Array(await g.read(gh, 2 * n));
    const cpu = float32ToFloat16(Float32Array.from(x));
    const got = float16ToFloat32(bits), want = float16ToFloat32(cpu);
    for (let i = 0; i < n; i++) {
      // WGSL lets the implementation round either way: the other neighbour of x is allowed.
      const xi = Math.fround(x[i]);
      const lo = Math.min(got[i], want[i]), hi = Math.max(got[i], want[i]);
      const ok = bits[i] === cpu[i] ||
        (Math.abs(bits[i] - cpu[i]) === 1 && lo <= xi && xi <= hi);
      if (!ok) {
        throw new Error(`n=${n} element ${i}: ${x[i]} cast to ${got[i]}, expected ${want[i]}`);
      }
    }
    // f16 -> f32 is exact: the bits uploaded from the CPU come back as the same values.
    const gh2 = g.upload(cpu);
    const gy = castF16ToF32(g, gh2, n);
    assertClose(await readF32(g, gy, n), want, 0, `f16 -> f32, n=${n}`);
    for (const buf of [gx, gh, gh2, gy]) g.pool.release(buf);
  }
  throws(() => castF32ToF16(g, gdummy(), 0), /n >= 1/);
});
