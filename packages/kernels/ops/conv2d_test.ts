import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { initGpu } from "../runtime/gpu.ts";
import { assertClose, finiteDiffVjp, randomArray, readF32, uploadF32 } from "./testing.ts";
import type { Activation, GemmConfig } from "./gemm.ts";
import {
  conv2d,
  conv2dBackwardBias,
  conv2dBackwardCpu,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dCpu,
  conv2dOutputSize,
  type Conv2dParams,
  conv2dParams,
  isPointwise,
  sumRows,
} from "./conv2d.ts";

const g = await initGpu();

const CONFIGS: GemmConfig[] = [
  { variant: "register", BM: 8, BN: 4, BK: 3, TM: 2, TN: 2 },
  { variant: "shared", BM: 8, BN: 8, BK: 5, TM: 4, TN: 4 },
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
