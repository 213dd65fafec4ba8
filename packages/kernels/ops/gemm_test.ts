import { throws } from "node:assert/strict";
import { float16ToFloat32, float32ToFloat16 } from "../../core/io/f16.ts";
import { type Gpu, initGpu } from "../runtime/gpu.ts";
import { assertClose, randomArray, readF32, uploadF32 } from "./testing.ts";
import {
  chooseGemmConfig,
  gemm,
  GEMM_REGISTER_SMALL,
  GEMM_SHARED_SMALL,
  type GemmConfig,
  gemmWgsl,
  gemmWorkgroups,
} from "./gemm.ts";
import { matmulCpu, matmulSpec } from "./matmul.ts";

const g = await initGpu();

Deno.test("gemm: custom strided loader and store index, both variants", async () => {
  // A is read from every other element of its buffer; C is written transposed.
  const M = 13, N = 6, K = 9;
  const a2 = randomArray(2 * M * K, 1), b = randomArray(K * N, 2);
  const a = Float64Array.from({ length: M * K }, (_, i) => a2[2 * i]);
  const want = matmulCpu(a, b, { M, N, K });
  const configs: GemmConfig[] = [
    { variant: "register", BM: 4, BN: 4, BK: 2, TM: 2, TN: 2 },
    { variant: "shared", BM: 8, BN: 4, BK: 4, TM: 4, TN: 4 },
  ];
  for (const config of configs) {
    const ga = uploadF32(g, a2), gb = uploadF32(g, b);
    const out = gemm(
      g,
      {
        M,
        N,
        K,
        inputs: ["a", "b"],
        loadA: (row, k) => `a[2u * (${row} * ${K}u + ${k})]`,
        loadB: (k, col) => `b[${k} * ${N}u + ${col}]`,
        storeIndex: (row, col) => `(${col} * ${M}u + ${row})`,
      },
      [ga, gb],
      { config },
    );
    const got = await readF32(g, out, M * N);
    const wantT = Float64Array.from({ length: M * N }, (_, i) => want[(i % M) * N + (i / M | 0)]);
    assertClose(got, wantT, 1e-5, JSON.stringify(config));
    for (const buf of [ga, gb, out]) g.pool.release(buf);
  }
});

Deno.test("gemm: more than 65535 tiles fold into a 2-D grid (both variants)", async () => {
  const configs: GemmConfig[] = [
    { variant: "register", BM: 2, BN: 1, BK: 1, TM: 1, TN: 1 },
    { variant: "shared", BM: 4, BN: 4, BK: 1, TM: 4, TN: 4 },
  ];
  for (const config of configs) {
    const M = 70001 * config.BM, N = 1, K = 2;
    const spec = matmulSpec({ M, N, K });
    const wg = gemmWorkgroups(spec, config);
    if (wg[1] < 2) throw new Error(`expected a folded grid, got ${wg}`);
    const a = randomArray(M * K, 3), b = randomArray(K * N, 4);
    const ga = uploadF32(g, a), gb = uploadF32(g, b);
    const out = gemm(g, spec, [ga, gb], { config });
    assertClose(await readF32(g, out, M * N), matmulCpu(a, b, { M, N, K }), 1e-6, config.variant);
    for (const buf of [ga, gb, out]) g.pool.release(buf);
  }
});

Deno.test("gemm: config choice, invalid configs and missing accumulate target are rejected", () => {
  const c = chooseGemmConfig(g, 512, 512);
  if (g.info.isFallback !== (c.variant === "register")) {
    throw new Error(`unexpected config ${JSON.stringify(c)} for ${g.info.name}`);
  }
  const spec = matmulSpec({ M: 4, N: 4, K: 4 });
  throws(() => gemmWgsl(spec, { variant: "shared", BM: 8, BN: 8, BK: 4, TM: 2, TN: 4 }), /TM/);
  throws(() => gemmWgsl(spec, { variant: "register", BM: 64, BN: 64, BK: 4, TM: 1, TN: 1 }));
  throws(() => gemmWgsl(matmulSpec({ M: 0, N: 4, K: 4 }), c), /must be >= 1/);
  const buf = uploadF32(g, [1, 2, 3, 4]);
  throws(() => gemm(g, matmulSpec({ M: 2, N: 2, K: 1 }, { accumulate: true }), [buf, buf]));
  g.pool.release(buf);
});

Deno.test("gemm: f16 storage is refused on an adapter without shader-f16", () => {
  const spec = { ...matmulSpec({ M: 2, N: 2, K: 1 }), precision: "f16-storage" as const };
  const noF16 = { ...g, info: { ...g.info, f16: false, name: "no-f16 adapter" } } as Gpu;
  const buf = uploadF32(g, [1, 2, 3, 4]);
  throws(() => gemm(noF16, spec, [buf, buf]), /shader-f16.*no-f16 adapter/);
  g.pool.release(buf);
  // The generated shader enables f16 and reads the inputs as f16 in both variants.
  for (const config of [chooseGemmConfig(g, 2, 2), GEMM_SHARED_SMALL, GEMM_REGISTER_SMALL]) {
    const code = gemmWgsl(spec, config);
    if (!code.startsWith("enable f16;") || !code.includes("a: array<f16>")) {
      throw new Error(`expected f16 storage in ${config.variant} WGSL:\n${code}`);
    }
  }
});

Deno.test("gemm: f16 storage keeps the bias and the output in f32 (both variants)", async () => {
  const M = 9, N = 8, K = 12;
  const spec = {
    ...matmulSpec({ M, N, K }, { bias: true, activation: "relu" }),
    precision: "f16-storage" as const,
  };
  const a = randomArray(M * K, 5, -2, 2), b = randomArray(K * N, 6, -2, 2);
  // A bias below f16 resolution next to 1000 (ulp 0.5): lost if it were stored as f16.
  const bias = Array.from({ length: N }, (_, i) => 1000 + 0.01 * (i + 1));
  const ah = float32ToFloat16(Float32Array.from(a)), bh = float32ToFloat16(Float32Array.from(b));
  const ref = matmulCpu(
    Float64Array.from(float16ToFloat32(ah)),
    Float64Array.from(float16ToFloat32(bh)),
    { M, N, K },
  ).map((v, i) => Math.max(v + Math.fround(bias[i % N]), 0));
  for (const config of [GEMM_REGISTER_SMALL, GEMM_SHARED_SMALL]) {
    const bufs = [g.upload(ah), g.upload(bh), uploadF32(g, bias)];
    if (!g.info.f16) {
      throws(() => gemm(g, spec, bufs, { config }), /shader-f16/);
      for (const buf of bufs) g.pool.release(buf);
      continue;
    }
    const out = gemm(g, spec, bufs, { config });
    assertClose(await readF32(g, out, M * N), ref, 1e-6, config.variant);
    for (const buf of [...bufs, out]) g.pool.release(buf);
  }
});
