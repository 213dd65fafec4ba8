import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { initGpu } from "../runtime/gpu.ts";
import { assertClose, finiteDiffVjp, randomArray, readF32, uploadF32 } from "./testing.ts";
import { type Activation, type GemmConfig, gemmWgsl } from "./gemm.ts";
import {
  conv2d,
  conv2dBackwardBias,
  conv2dBackwardCpu,
  conv2dBackwardInput,
  conv2dBackwardInputPhaseSpecs,
  conv2dBackwardInputSpec,
  conv2dBackwardInputZeroWgsl,
  conv2dBackwardWeight,
  conv2dCpu,
  conv2dOutputSize,
  type Conv2dParams,
  conv2dParams,
  conv2dSpec,
  isPointwise,
  sumRows,
  usesPhases,
} from "./conv2d.ts";

const g = await initGpu();

/** Shared-memory tiles with BK % 4 == 0, so the vec4 loaders are used where they apply. */
const SHARED_VEC4: GemmConfig = { variant: "shared", BM: 8, BN: 8, BK: 4, TM: 4, TN: 4 };
const CONFIGS: GemmConfig[] = [
  { variant: "register", BM: 8, BN: 4, BK: 3, TM: 2, TN: 2 },
  { variant: "shared", BM: 8, BN: 8, BK: 5, TM: 4, TN: 4 },
  SHARED_VEC4,
];

interface Ranges {
  hw: number;
  cg: number;
  k: number;
  groups: number;
  n: number;
}

function paramsArb(r: Ranges): fc.Arbitrary<Conv2dParams> {
  return fc.record({
    N: fc.integer({ min: 1, max: r.n }),
    H: fc.integer({ min: 1, max: r.hw }),
    W: fc.integer({ min: 1, max: r.hw }),
    cinG: fc.integer({ min: 1, max: r.cg }),
    coutG: fc.integer({ min: 1, max: r.cg }),
    groups: fc.integer({ min: 1, max: r.groups }),
    KH: fc.integer({ min: 1, max: r.k }),
    KW: fc.integer({ min: 1, max: r.k }),
    strideH: fc.integer({ min: 1, max: 3 }),
    strideW: fc.integer({ min: 1, max: 3 }),
    padTop: fc.integer({ min: 0, max: 2 }),
    padBottom: fc.integer({ min: 0, max: 2 }),
    padLeft: fc.integer({ min: 0, max: 2 }),
    padRight: fc.integer({ min: 0, max: 2 }),
    dilationH: fc.integer({ min: 1, max: 2 }),
    dilationW: fc.integer({ min: 1, max: 2 }),
  }).map(({ cinG, coutG, ...q }) => ({ ...q, Cin: cinG * q.groups, Cout: coutG * q.groups }))
    .filter((p) => {
      const { OH, OW } = conv2dOutputSize(p);
      return OH >= 1 && OW >= 1;
    });
}

const sizes = (p: Conv2dParams) => {
  const { OH, OW } = conv2dOutputSize(p);
  return {
    x: p.N * p.H * p.W * p.Cin,
    w: p.KH * p.KW * (p.Cin / p.groups) * p.Cout,
    y: p.N * OH * OW * p.Cout,
    OH,
    OW,
  };
};

const maxAbs = (x: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
};
/** f32 tolerance for sums of `terms` products of values in [-1, 1]. */
const tolFor = (terms: number, ref: ArrayLike<number>) => 2e-7 * (terms + 8) * (1 + maxAbs(ref));

Deno.test("conv2d CPU backward matches central finite differences", () => {
  fc.assert(
    fc.property(
      paramsArb({ hw: 5, cg: 2, k: 3, groups: 2, n: 2 }),
      fc.integer(),
      (p, seed) => {
        const s = sizes(p);
        const x = randomArray(s.x, seed), w = randomArray(s.w, seed + 1);
        const bias = randomArray(p.Cout, seed + 2), dy = randomArray(s.y, seed + 3);
        const [fx, fw, fb] = finiteDiffVjp(
          ([xx, ww, bb]) => conv2dCpu(xx, ww, p, { bias: bb }),
          [x, w, bias],
          dy,
        );
        const ref = conv2dBackwardCpu(x, w, dy, p);
        const label = JSON.stringify(p);
        assertClose(ref.dx, fx, 1e-6, `dx ${label}`);
        assertClose(ref.dw, fw, 1e-6, `dw ${label}`);
        assertClose(ref.dbias, fb, 1e-6, `dbias ${label}`);
      },
    ),
    { seed: 21, numRuns: 25 },
  );
});

const ACTS: Activation[] = ["none", "relu", "relu6", "silu"];

async function checkGpu(p: Conv2dParams, config: GemmConfig | undefined, seed: number, act = 0) {
  const s = sizes(p);
  const x = randomArray(s.x, seed), w = randomArray(s.w, seed + 1);
  const bias = randomArray(p.Cout, seed + 2), res = randomArray(s.y, seed + 3);
  const dy = randomArray(s.y, seed + 4), prev = randomArray(s.w, seed + 5);
  const activation = ACTS[act % ACTS.length];
  const useBias = act % 2 === 0, useRes = act % 3 !== 1;
  const [gx, gw, gb, gr, gdy] = [x, w, bias, res, dy].map((a) => uploadF32(g, a));
  const gy = conv2d(g, gx, gw, p, {
    bias: useBias ? gb : undefined,
    residual: useRes ? gr : undefined,
    activation,
    config,
  });
  const gdx = conv2dBackwardInput(g, gdy, gw, p, config);
  const gdw = conv2dBackwardWeight(g, gx, gdy, p, { config });
  const gacc = uploadF32(g, prev);
  conv2dBackwardWeight(g, gx, gdy, p, { config, out: gacc });
  const gdb = conv2dBackwardBias(g, gdy, p);
  // The subgroup kernel too, sometimes with a workgroup that is not a multiple of 32.
  const gdbSg = conv2dBackwardBias(g, gdy, p, {
    subgroups: true,
    workgroupSize: act % 2 ? 40 : undefined,
  });
  const y = conv2dCpu(x, w, p, {
    bias: useBias ? bias : undefined,
    residual: useRes ? res : undefined,
    activation,
  });
  const ref = conv2dBackwardCpu(x, w, dy, p);
  const label = `${JSON.stringify(p)} ${JSON.stringify(config)} ${activation} seed ${seed}`;
  const K = p.KH * p.KW * p.Cin / p.groups;
  const R = p.N * s.OH * s.OW;
  assertClose(await readF32(g, gy, s.y), y, tolFor(K + 2, y), `y ${label}`);
  assertClose(
    await readF32(g, gdx, s.x),
    ref.dx,
    tolFor(p.KH * p.KW * p.Cout, ref.dx),
    `dx ${label}`,
  );
  assertClose(await readF32(g, gdw, s.w), ref.dw, tolFor(R, ref.dw), `dw ${label}`);
  const acc = ref.dw.map((v, i) => v + prev[i]);
  assertClose(await readF32(g, gacc, s.w), acc, tolFor(R + 1, acc), `dw accumulate ${label}`);
  assertClose(await readF32(g, gdb, p.Cout), ref.dbias, tolFor(R, ref.dbias), `db ${label}`);
  const dbSg = await readF32(g, gdbSg, p.Cout);
  assertClose(dbSg, ref.dbias, tolFor(R, ref.dbias), `db subgroups ${label}`);
  for (const b of [gx, gw, gb, gr, gdy, gy, gdx, gdw, gacc, gdb, gdbSg]) g.pool.release(b);
}

Deno.test("conv2d GPU forward (fused epilogue) and backward match the CPU reference", async () => {
  const before = g.pool.bytesInUse;
  await fc.assert(
    fc.asyncProperty(
      paramsArb({ hw: 7, cg: 5, k: 3, groups: 3, n: 2 }),
      fc.integer({ min: 0, max: CONFIGS.length - 1 }),
      fc.integer({ min: 0, max: 11 }),
      fc.integer(),
      async (p, ci, act, seed) => await checkGpu(p, CONFIGS[ci], seed, act),
    ),
    { seed: 5, numRuns: 24 },
  );
  if (g.pool.bytesInUse !== before) throw new Error("conv2d test leaked pooled buffers");
});

Deno.test("sumRows: serial-tree and subgroup kernels match the CPU column sums", async () => {
  const before = g.pool.bytesInUse;
  for (const [rows, cols] of [[1, 1], [3, 5], [1000, 3], [4099, 37], [33, 520]]) {
    const data = randomArray(rows * cols, rows + cols, -2, 2);
    const want = new Float64Array(cols);
    for (let i = 0; i < data.length; i++) want[i % cols] += data[i];
    const x = uploadF32(g, data);
    for (
      const opts of [{ subgroups: false }, { subgroups: true }, {
        subgroups: true,
        workgroupSize: 20,
      }]
    ) {
      const out = sumRows(g, x, rows, cols, opts);
      // f32 running sums over up to rows/2 terms (workgroup 20: two lanes a column).
      assertClose(
        await readF32(g, out, cols),
        want,
        1e-6 + 1e-7 * rows,
        `sumRows ${rows}x${cols} ${JSON.stringify(opts)}`,
      );
      g.pool.release(out);
    }
    g.pool.release(x);
  }
  if (g.pool.bytesInUse !== before) throw new Error("sumRows test leaked pooled buffers");
});

Deno.test("conv2d 1x1 stride-1 (plain GEMM path), grouped and not, both variants", async () => {
  for (const groups of [1, 2]) {
    const p = conv2dParams({ N: 2, H: 3, W: 5, Cin: 6, Cout: 4, KH: 1, KW: 1, groups });
    if (!isPointwise(p)) throw new Error("expected the pointwise path");
    for (const [i, config] of CONFIGS.entries()) await checkGpu(p, config, 40 + i, groups + i);
  }
});

Deno.test("conv2d default config on a ResNet-like stride-2 padded layer", async () => {
  const p = conv2dParams({
    N: 2,
    H: 9,
    W: 10,
    Cin: 16,
    Cout: 24,
    KH: 3,
    KW: 3,
    strideH: 2,
    strideW: 2,
    padTop: 1,
    padBottom: 1,
    padLeft: 1,
    padRight: 1,
  });
  await checkGpu(p, undefined, 99, 1);
});

Deno.test("conv2d forward and backward agree with TensorFlow.js (explicit padding)", async () => {
  await tf.setBackend("cpu");
  await fc.assert(
    fc.asyncProperty(
      paramsArb({ hw: 7, cg: 4, k: 3, groups: 1, n: 2 }).filter((p) =>
        (p.strideH === 1 && p.strideW === 1) || (p.dilationH === 1 && p.dilationW === 1)
      ),
      fc.integer(),
      async (p, seed) => {
        const s = sizes(p);
        const x = randomArray(s.x, seed), w = randomArray(s.w, seed + 1);
        const dy = randomArray(s.y, seed + 2);
        const tx = tf.tensor4d(Float32Array.from(x), [p.N, p.H, p.W, p.Cin]);
        const tw = tf.tensor4d(Float32Array.from(w), [p.KH, p.KW, p.Cin, p.Cout]);
        const tdy = tf.tensor4d(Float32Array.from(dy), [p.N, s.OH, s.OW, p.Cout]);
        const pad: [[number, number], [number, number], [number, number], [number, number]] = [
          [0, 0],
          [p.padTop, p.padBottom],
          [p.padLeft, p.padRight],
          [0, 0],
        ];
        const f = (a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2d(
            a as tf.Tensor4D,
            b as tf.Tensor4D,
            [p.strideH, p.strideW],
            pad,
            "NHWC",
            [p.dilationH, p.dilationW],
          );
        const ty = f(tx, tw);
        // tfjs has no conv2d gradient for dilation > 1: there only the forward is compared
        // (the gradients are still checked against the finite-difference-tested reference).
        const dilated = p.dilationH > 1 || p.dilationW > 1;
        const [tdx, tdw] = dilated ? [ty, ty] : tf.grads(f)([tx, tw], tdy);
        const [gx, gw, gdy] = [x, w, dy].map((a) => uploadF32(g, a));
        const gy = conv2d(g, gx, gw, p);
        const gdx = conv2dBackwardInput(g, gdy, gw, p);
        const gdw = conv2dBackwardWeight(g, gx, gdy, p);
        const label = `${JSON.stringify(p)} seed ${seed}`;
        const y = ty.dataSync(), dx = tdx.dataSync(), dw = tdw.dataSync();
        const R = p.N * s.OH * s.OW;
        assertClose(await readF32(g, gy, s.y), y, tolFor(p.KH * p.KW * p.Cin, y), `y ${label}`);
        if (!dilated) {
          const dxTol = tolFor(p.KH * p.KW * p.Cout, dx);
          assertClose(await readF32(g, gdx, s.x), dx, dxTol, `dx ${label}`);
          assertClose(await readF32(g, gdw, s.w), dw, tolFor(R, dw), `dw ${label}`);
        } else {
          const ref = conv2dBackwardCpu(x, w, dy, p);
          const dxTol = tolFor(p.KH * p.KW * p.Cout, ref.dx);
          assertClose(await readF32(g, gdx, s.x), ref.dx, dxTol, `dx ${label}`);
          assertClose(await readF32(g, gdw, s.w), ref.dw, tolFor(R, ref.dw), `dw ${label}`);
        }
        tf.dispose(dilated ? [tx, tw, tdy, ty] : [tx, tw, tdy, ty, tdx, tdw]);
        for (const b of [gx, gw, gdy, gy, gdx, gdw]) g.pool.release(b);
      },
    ),
    { seed: 8, numRuns: 12 },
  );
});

/** Taps (kh or kw) of one dimension whose output position has the right residue for `i`. */
const residueTaps = (i: number, K: number, stride: number, pad: number, dil: number) =>
  Array.from({ length: K }, (_, k) => k).filter((k) => (i + pad - k * dil) % stride === 0)
    .length;

const PHASE_CASES: Conv2dParams[] = [
  // 3x3 stride 2, odd sizes, asymmetric padding.
  {
    N: 2,
    H: 9,
    W: 7,
    Cin: 3,
    Cout: 5,
    KH: 3,
    KW: 3,
    strideH: 2,
    strideW: 2,
    padTop: 1,
    padLeft: 2,
  },
  // Symmetric ResNet-style 3x3 s2 p1: phases of 1, 2, 2 and 4 taps.
  {
    N: 1,
    H: 7,
    W: 8,
    Cin: 4,
    Cout: 4,
    KH: 3,
    KW: 3,
    strideH: 2,
    strideW: 2,
    padTop: 1,
    padLeft: 1,
  },
  // Strides 3 and 2, grouped, Cout/g % 4 == 0 (vec4 weights with the shared BK-4 tiles).
  { N: 1, H: 11, W: 10, Cin: 4, Cout: 8, KH: 3, KW: 2, strideH: 3, strideW: 2, groups: 2 },
  // Kernel smaller than the stride: positions no tap reaches (the zero fill).
  { N: 2, H: 8, W: 9, Cin: 6, Cout: 6, KH: 1, KW: 1, strideH: 2, strideW: 3 },
  // 5x5 stride 3 with asymmetric padding.
  { N: 1, H: 7, W: 7, Cin: 2, Cout: 3, KH: 5, KW: 5, strideH: 3, strideW: 3, padTop: 2 },
  // Fewer rows/columns than the stride: residue classes without any position.
  { N: 1, H: 2, W: 1, Cin: 2, Cout: 4, KH: 3, KW: 1, strideH: 3, strideW: 3, padTop: 1 },
  // Dilation with stride (gcd(2, 2) = 2: half the row classes have no tap).
  {
    N: 1,
    H: 9,
    W: 8,
    Cin: 3,
    Cout: 4,
    KH: 3,
    KW: 2,
    strideH: 2,
    strideW: 2,
    dilationH: 2,
    dilationW: 3,
    padTop: 2,
    padBottom: 1,
    padRight: 2,
  },
  // Three groups, stride 2 along one dimension only.
  { N: 1, H: 6, W: 5, Cin: 6, Cout: 12, KH: 3, KW: 3, strideH: 2, strideW: 1, groups: 3 },
].map((q) => conv2dParams({ padBottom: 1, padRight: 1, ...q }));

Deno.test("conv2d dx by phases (stride 2, 3): only matching taps, CPU reference and tfjs", async () => {
  await tf.setBackend("cpu");
  const before = g.pool.bytesInUse;
  for (const [ci, p] of PHASE_CASES.entries()) {
    const label = JSON.stringify(p);
    if (!usesPhases(p)) throw new Error(`expected the phase path for ${label}`);
    const { CoutG, ...s } = { ...sizes(p), CoutG: p.Cout / p.groups };
    // The phase GEMMs do exactly the work of the taps with matching residues: no zero taps.
    const specs = conv2dBackwardInputPhaseSpecs(p);
    let want = 0, reached = true;
    for (let ih = 0; ih < p.H; ih++) {
      for (let iw = 0; iw < p.W; iw++) {
        const t = residueTaps(ih, p.KH, p.strideH, p.padTop, p.dilationH) *
          residueTaps(iw, p.KW, p.strideW, p.padLeft, p.dilationW);
        want += t * p.N * CoutG;
        if (t === 0) reached = false;
      }
    }
    const work = specs.reduce((a, sp) => a + sp.M * sp.K, 0);
    if (work !== want) throw new Error(`phase work ${work} != ${want} for ${label}`);
    if (work >= p.N * p.H * p.W * p.KH * p.KW * CoutG) {
      throw new Error(`phases do no less work than the zero-tap GEMM for ${label}`);
    }
    if (specs.length > p.strideH * p.strideW) throw new Error(`too many launches: ${label}`);
    if ((conv2dBackwardInputZeroWgsl(p) === null) !== reached) {
      throw new Error(`zero fill ${reached ? "emitted" : "missing"} for ${label}`);
    }
    const x = randomArray(s.x, 300 + ci), w = randomArray(s.w, 400 + ci);
    const dy = randomArray(s.y, 500 + ci);
    const ref = conv2dBackwardCpu(x, w, dy, p).dx;
    let tfDx: Float32Array | undefined;
    if (p.groups === 1 && p.dilationH === 1 && p.dilationW === 1) {
      const tx = tf.tensor4d(Float32Array.from(x), [p.N, p.H, p.W, p.Cin]);
      const tw = tf.tensor4d(Float32Array.from(w), [p.KH, p.KW, p.Cin, p.Cout]);
      const tdy = tf.tensor4d(Float32Array.from(dy), [p.N, s.OH, s.OW, p.Cout]);
      const pad: [[number, number], [number, number], [number, number], [number, number]] = [
        [0, 0],
        [p.padTop, p.padBottom],
        [p.padLeft, p.padRight],
        [0, 0],
      ];
      const [tdx] = tf.grads((a: tf.Tensor) =>
        tf.conv2d(a as tf.Tensor4D, tw, [p.strideH, p.strideW], pad, "NHWC")
      )([tx], tdy);
      tfDx = tdx.dataSync() as Float32Array;
      tf.dispose([tx, tw, tdy, tdx]);
    }
    const tol = tolFor(p.KH * p.KW * p.Cout, ref);
    const [gw, gdy] = [w, dy].map((a) => uploadF32(g, a));
    for (const config of [...CONFIGS, undefined]) {
      // A pooled buffer full of junk is handed back first, so unwritten elements would show.
      g.pool.release(uploadF32(g, new Float64Array(s.x).fill(12345)));
      const gdx = conv2dBackwardInput(g, gdy, gw, p, config);
      const dx = await readF32(g, gdx, s.x);
      const l = `dx ${label} ${JSON.stringify(config)}`;
      assertClose(dx, ref, tol, l);
      if (tfDx) assertClose(dx, tfDx, tol, `${l} vs tfjs`);
      g.pool.release(gdx);
    }
    for (const b of [gw, gdy]) g.pool.release(b);
  }
  if (g.pool.bytesInUse !== before) throw new Error("phase test leaked pooled buffers");
});

Deno.test("conv2d dx: stride 1 keeps the single GEMM over all taps", () => {
  const p = conv2dParams({ N: 1, H: 5, W: 5, Cin: 3, Cout: 4, KH: 3, KW: 3, padTop: 1 });
  if (usesPhases(p)) throw new Error("stride 1 must not use phases");
  const spec = conv2dBackwardInputSpec(p);
  if (spec.K !== 9 * 4 || spec.M !== 25) throw new Error(`unexpected spec ${spec.M}x${spec.K}`);
});

/** Whether the generated WGSL declares input buffer `name` as an array of vec4. */
const isVec4 = (code: string, name: string) =>
  code.includes(`var<storage, read> ${name}: array<vec4<f32>>;`);
const isScalar = (code: string, name: string) =>
  code.includes(`var<storage, read> ${name}: array<f32>;`);

Deno.test("conv2d vec4 loaders: declared where valid (shared variant only), and correct", async () => {
  const REGISTER = CONFIGS[0];
  const cases: { p: Conv2dParams; x: boolean; w: boolean }[] = [
    // Pointwise, Cin and Cout % 4 == 0: both operands as vec4.
    { p: conv2dParams({ N: 2, H: 3, W: 5, Cin: 8, Cout: 12, KH: 1, KW: 1 }), x: true, w: true },
    // Pointwise grouped: Cin/g = 4 (vec4 x), Cout/g = 6 (scalar w).
    {
      p: conv2dParams({ N: 1, H: 3, W: 3, Cin: 8, Cout: 12, KH: 1, KW: 1, groups: 2 }),
      x: true,
      w: false,
    },
    // Pointwise, Cin % 4 != 0.
    { p: conv2dParams({ N: 1, H: 4, W: 3, Cin: 6, Cout: 8, KH: 1, KW: 1 }), x: false, w: true },
    // 3x3 padded (im2col loader stays scalar), Cout % 4 == 0.
    {
      p: conv2dParams({ N: 1, H: 6, W: 5, Cin: 8, Cout: 8, KH: 3, KW: 3, padTop: 1, padLeft: 1 }),
      x: false,
      w: true,
    },
    // 1x1 stride 2 is not pointwise; grouped with Cout/g = 4.
    {
      p: conv2dParams({
        N: 1,
        H: 7,
        W: 6,
        Cin: 8,
        Cout: 8,
        KH: 1,
        KW: 1,
        strideH: 2,
        strideW: 2,
        groups: 2,
      }),
      x: false,
      w: true,
    },
    // Cout % 4 != 0: nothing as vec4.
    {
      p: conv2dParams({ N: 1, H: 5, W: 5, Cin: 4, Cout: 6, KH: 3, KW: 3, strideH: 2, strideW: 2 }),
      x: false,
      w: false,
    },
  ];
  for (const [i, { p, x, w }] of cases.entries()) {
    const label = JSON.stringify(p);
    const fwd = gemmWgsl(conv2dSpec(p), SHARED_VEC4);
    if (isVec4(fwd, "x") !== x || isScalar(fwd, "x") === x) throw new Error(`fwd x: ${label}`);
    if (isVec4(fwd, "w") !== w || isScalar(fwd, "w") === w) throw new Error(`fwd w: ${label}`);
    const reg = gemmWgsl(conv2dSpec(p), REGISTER);
    if (!isScalar(reg, "x") || !isScalar(reg, "w")) throw new Error(`register vec4: ${label}`);
    // dx reads the weights along Cout: vec4 exactly when Cout/g % 4 == 0; dy as vec4 only on
    // the pointwise path.
    const wDx = (p.Cout / p.groups) % 4 === 0;
    const dxSpecs = usesPhases(p) ? conv2dBackwardInputPhaseSpecs(p) : [conv2dBackwardInputSpec(p)];
    for (const spec of dxSpecs) {
      const code = gemmWgsl(spec, SHARED_VEC4);
      if (isVec4(code, "w") !== wDx) throw new Error(`dx w: ${label}`);
      if (isVec4(code, "dy") !== (isPointwise(p) && wDx)) throw new Error(`dx dy: ${label}`);
    }
    for (const config of [SHARED_VEC4, REGISTER]) await checkGpu(p, config, 70 + i, i);
  }
});
