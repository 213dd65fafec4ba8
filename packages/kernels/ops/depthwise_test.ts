import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { initGpu } from "../runtime/gpu.ts";
import { assertClose, finiteDiffVjp, randomArray, readF32, uploadF32 } from "./testing.ts";
import type { Activation } from "./gemm.ts";
import {
  depthwise,
  depthwiseBackwardBias,
  depthwiseBackwardCpu,
  depthwiseBackwardInput,
  depthwiseBackwardWeight,
  type DepthwiseConfig,
  depthwiseCpu,
  depthwiseOutputSize,
  type DepthwiseParams,
} from "./depthwise.ts";

const g = await initGpu();

function paramsArb(hw: number, c: number, k: number): fc.Arbitrary<DepthwiseParams> {
  return fc.record({
    N: fc.integer({ min: 1, max: 2 }),
    H: fc.integer({ min: 1, max: hw }),
    W: fc.integer({ min: 1, max: hw }),
    C: fc.integer({ min: 1, max: c }),
    KH: fc.integer({ min: 1, max: k }),
    KW: fc.integer({ min: 1, max: k }),
    strideH: fc.integer({ min: 1, max: 2 }),
    strideW: fc.integer({ min: 1, max: 2 }),
    padTop: fc.integer({ min: 0, max: 3 }),
    padBottom: fc.integer({ min: 0, max: 3 }),
    padLeft: fc.integer({ min: 0, max: 3 }),
    padRight: fc.integer({ min: 0, max: 3 }),
  }).filter((p) => {
    const { OH, OW } = depthwiseOutputSize(p);
    return OH >= 1 && OW >= 1;
  });
}

const sizes = (p: DepthwiseParams) => {
  const { OH, OW } = depthwiseOutputSize(p);
  return { x: p.N * p.H * p.W * p.C, w: p.KH * p.KW * p.C, y: p.N * OH * OW * p.C, OH, OW };
};

const maxAbs = (x: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
};
const tolFor = (terms: number, ref: ArrayLike<number>) => 2e-7 * (terms + 8) * (1 + maxAbs(ref));

Deno.test("depthwise CPU backward matches central finite differences", () => {
  fc.assert(
    fc.property(paramsArb(6, 3, 5), fc.integer(), (p, seed) => {
      const s = sizes(p);
      const x = randomArray(s.x, seed), w = randomArray(s.w, seed + 1);
      const bias = randomArray(p.C, seed + 2), dy = randomArray(s.y, seed + 3);
      const [fx, fw, fb] = finiteDiffVjp(
        ([xx, ww, bb]) => depthwiseCpu(xx, ww, p, { bias: bb }),
        [x, w, bias],
        dy,
      );
      const ref = depthwiseBackwardCpu(x, w, dy, p);
      const label = JSON.stringify(p);
      assertClose(ref.dx, fx, 1e-6, `dx ${label}`);
      assertClose(ref.dw, fw, 1e-6, `dw ${label}`);
      assertClose(ref.dbias, fb, 1e-6, `dbias ${label}`);
    }),
    { seed: 31, numRuns: 25 },
  );
});

const ACTS: Activation[] = ["none", "relu", "relu6", "silu"];

async function checkGpu(p: DepthwiseParams, config: DepthwiseConfig, seed: number, act: number) {
  const s = sizes(p);
  const x = randomArray(s.x, seed, -2, 2), w = randomArray(s.w, seed + 1);
  const bias = randomArray(p.C, seed + 2), dy = randomArray(s.y, seed + 3);
  const prev = randomArray(s.w, seed + 4);
  const activation = ACTS[act % ACTS.length];
  const useBias = act % 3 !== 2;
  const [gx, gw, gb, gdy, gacc] = [x, w, bias, dy, prev].map((a) => uploadF32(g, a));
  const gy = depthwise(g, gx, gw, p, { bias: useBias ? gb : undefined, activation, config });
  const gdx = depthwiseBackwardInput(g, gdy, gw, p, config);
  const gdw = depthwiseBackwardWeight(g, gx, gdy, p, { config });
  depthwiseBackwardWeight(g, gx, gdy, p, { config, out: gacc });
  const gdb = depthwiseBackwardBias(g, gdy, p);
  const y = depthwiseCpu(x, w, p, { bias: useBias ? bias : undefined, activation });
  const ref = depthwiseBackwardCpu(x, w, dy, p);
  const label = `${JSON.stringify(p)} ${JSON.stringify(config)} ${activation} seed ${seed}`;
  const R = p.N * s.OH * s.OW, taps = p.KH * p.KW;
  assertClose(await readF32(g, gy, s.y), y, tolFor(taps + 1, y), `y ${label}`);
  assertClose(await readF32(g, gdx, s.x), ref.dx, tolFor(taps, ref.dx), `dx ${label}`);
  assertClose(await readF32(g, gdw, s.w), ref.dw, tolFor(2 * R, ref.dw), `dw ${label}`);
  const acc = ref.dw.map((v, i) => v + prev[i]);
  assertClose(await readF32(g, gacc, s.w), acc, tolFor(2 * R + 1, acc), `dw accumulate ${label}`);
  assertClose(await readF32(g, gdb, p.C), ref.dbias, tolFor(R, ref.dbias), `db ${label}`);
  for (const b of [gx, gw, gb, gdy, gacc, gy, gdx, gdw, gdb]) g.pool.release(b);
}

const configArb: fc.Arbitrary<DepthwiseConfig> = fc.record({
  tileW: fc.integer({ min: 1, max: 5 }),
  vec4: fc.boolean(),
  wgWeight: fc.constantFrom(1, 8, 64),
});

Deno.test("depthwise GPU forward (bias, activation) and backward match the CPU reference", async () => {
  const before = g.pool.bytesInUse;
  await fc.assert(
    fc.asyncProperty(
      paramsArb(9, 3, 5).map((p) => ({ ...p, C: p.C * 4 - (p.N === 2 ? 1 : 0) })),
      configArb,
      fc.integer({ min: 0, max: 11 }),
      fc.integer(),
      async (p, config, act, seed) => await checkGpu(p, config, seed, act),
    ),
    { seed: 13, numRuns: 30 },
  );
  if (g.pool.bytesInUse !== before) throw new Error("depthwise test leaked pooled buffers");
});

Deno.test("depthwise 3x3 and 5x5, stride 1 and 2, MobileNet-like padding (default config)", async () => {
  let seed = 100;
  for (const K of [3, 5]) {
    for (const stride of [1, 2]) {
      const pad = (K - 1) / 2;
      const p: DepthwiseParams = {
        N: 2,
        H: 11,
        W: 10,
        C: 24,
        KH: K,
        KW: K,
        strideH: stride,
        strideW: stride,
        // TensorFlow-style SAME for stride 2 pads less on top/left.
        padTop: stride === 2 ? pad - 1 : pad,
        padBottom: pad,
        padLeft: stride === 2 ? pad - 1 : pad,
        padRight: pad,
      };
      await checkGpu(p, {}, seed++, seed);
    }
  }
});

Deno.test("depthwise forward and backward agree with TensorFlow.js", async () => {
  await tf.setBackend("cpu");
  await fc.assert(
    fc.asyncProperty(
      paramsArb(7, 6, 5).filter((p) => p.strideH === p.strideW),
      fc.integer(),
      async (p, seed) => {
        const s = sizes(p);
        const x = randomArray(s.x, seed), w = randomArray(s.w, seed + 1);
        const dy = randomArray(s.y, seed + 2);
        const tx = tf.tensor4d(Float32Array.from(x), [p.N, p.H, p.W, p.C]);
        const tw = tf.tensor4d(Float32Array.from(w), [p.KH, p.KW, p.C, 1]);
        const tdy = tf.tensor4d(Float32Array.from(dy), [p.N, s.OH, s.OW, p.C]);
        const pad: [[number, number], [number, number], [number, number], [number, number]] = [
          [0, 0],
          [p.padTop, p.padBottom],
          [p.padLeft, p.padRight],
          [0, 0],
        ];
        const f = (a: tf.Tensor, b: tf.Tensor) =>
          tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, [p.strideH, p.strideW], pad);
        const ty = f(tx, tw);
        const [tdx, tdw] = tf.grads(f)([tx, tw], tdy);
        const [gx, gw, gdy] = [x, w, dy].map((a) => uploadF32(g, a));
        const gy = depthwise(g, gx, gw, p);
        const gdx = depthwiseBackwardInput(g, gdy, gw, p);
        const gdw = depthwiseBackwardWeight(g, gx, gdy, p);
        const label = `${JSON.stringify(p)} seed ${seed}`;
        const y = ty.dataSync(), dx = tdx.dataSync(), dw = tdw.dataSync();
        const taps = p.KH * p.KW, R = p.N * s.OH * s.OW;
        assertClose(await readF32(g, gy, s.y), y, tolFor(taps, y), `y ${label}`);
        assertClose(await readF32(g, gdx, s.x), dx, tolFor(taps, dx), `dx ${label}`);
        assertClose(await readF32(g, gdw, s.w), dw, tolFor(R, dw), `dw ${label}`);
        tf.dispose([tx, tw, tdy, ty, tdx, tdw]);
        for (const b of [gx, gw, gdy, gy, gdx, gdw]) g.pool.release(b);
      },
    ),
    { seed: 17, numRuns: 12 },
  );
});
