import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { initGpu } from "../runtime/gpu.ts";
import {
  batchNormBackward,
  batchNormBackwardCpu,
  batchNormEval,
  batchNormEvalCpu,
  type BatchNormParams,
  batchNormTrain,
  batchNormTrainCpu,
  type BnActivation,
} from "./batchnorm.ts";
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
const SEED = Number(Deno.env.get("FC_SEED") ?? 20240611);

function check(name: string, run: () => Promise<void> | void): Promise<void> {
  return withSeed(name, SEED, run);
}

const shapeArb = fc.record({
  N: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 4 }),
  W: fc.integer({ min: 1, max: 5 }),
  C: fc.integer({ min: 1, max: 9 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
}).filter((s) => s.N * s.H * s.W >= 2);

function inputs(p: BatchNormParams, seed: number) {
  const R = p.N * p.H * p.W;
  return {
    x: randomArray(R * p.C, seed, -2, 3),
    gamma: randomArray(p.C, seed + 1, 0.5, 1.5),
    beta: randomArray(p.C, seed + 2, -1, 1),
    rm: randomArray(p.C, seed + 3, -0.5, 0.5),
    rv: randomArray(p.C, seed + 4, 0.5, 2),
    dy: randomArray(R * p.C, seed + 5),
  };
}

Deno.test("batchnorm CPU backward matches central finite differences", async () => {
  await check("bn finite differences", () => {
    fc.assert(
      fc.property(shapeArb, (s) => {
        const p = { N: s.N, H: s.H, W: s.W, C: s.C };
        const v = inputs(p, s.seed);
        const fwd = (a: Float64Array[]) => batchNormTrainCpu(a[0], a[1], a[2], v.rm, v.rv, p).y;
        const [dx, dg, db] = finiteDiffVjp(fwd, [v.x, v.gamma, v.beta], v.dy);
        const f = batchNormTrainCpu(v.x, v.gamma, v.beta, v.rm, v.rv, p);
        const ref = batchNormBackwardCpu(v.x, v.dy, v.gamma, f.mean, f.invstd, p);
        assertClose(ref.dx, dx, 1e-6, "dx");
        assertClose(ref.dgamma, dg, 1e-6, "dgamma");
        assertClose(ref.dbeta, db, 1e-6, "dbeta");
      }),
      { seed: SEED, numRuns: 15 },
    );
    return Promise.resolve();
  });
});

/** Runs the training forward and backward on the GPU and checks them against the f64 CPU. */
async function checkTrainBackward(
  p: BatchNormParams,
  v: ReturnType<typeof inputs>,
  label: string,
): Promise<void> {
  const R = p.N * p.H * p.W, C = p.C;
  const ref = batchNormTrainCpu(v.x, v.gamma, v.beta, v.rm, v.rv, p);
  const bref = batchNormBackwardCpu(v.x, v.dy, v.gamma, ref.mean, ref.invstd, p);
  const bx = uploadF32(g, v.x), bg = uploadF32(g, v.gamma), bb = uploadF32(g, v.beta);
  const brm = uploadF32(g, v.rm), brv = uploadF32(g, v.rv), bdy = uploadF32(g, v.dy);
  const { y, saved } = batchNormTrain(g, bx, bg, bb, brm, brv, p);
  const { dx, dgamma, dbeta } = batchNormBackward(g, bx, bdy, bg, saved, p);
  const sv = await readF32(g, saved, 2 * C);
  assertClose(await readF32(g, y, R * C), ref.y, 2e-4, `${label} y`);
  assertClose(sv.subarray(0, C), ref.mean, 1e-5, `${label} mean`);
  assertClose(sv.subarray(C), ref.invstd, 1e-4, `${label} invstd`);
  assertClose(await readF32(g, brm, C), ref.runningMean, 1e-5, `${label} running mean`);
  assertClose(await readF32(g, brv, C), ref.runningVar, 1e-4, `${label} running var`);
  assertClose(await readF32(g, dx, R * C), bref.dx, 5e-4, `${label} dx`);
  assertClose(await readF32(g, dgamma, C), bref.dgamma, 2e-4, `${label} dgamma`);
  assertClose(await readF32(g, dbeta, C), bref.dbeta, 2e-4, `${label} dbeta`);
  for (const b of [bx, bg, bb, brm, brv, bdy, y, saved, dx, dgamma, dbeta]) g.pool.release(b);
}

/** Both reduction paths: the serial per-channel combination and the forced subgroup one. */
const PATHS = [false, true];

Deno.test("batchnorm GPU training forward/backward match the CPU reference", async () => {
  if (!g.info.subgroups) throw new Error("these tests force the subgroup path: need subgroups");
  await check("bn gpu", async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeArb,
        fc.constantFrom(undefined, 1, 2, 3),
        fc.boolean(),
        async (s, splits, subgroups) => {
          const p = { N: s.N, H: s.H, W: s.W, C: s.C, splits, subgroups };
          await checkTrainBackward(p, inputs(p, s.seed), `subgroups=${subgroups}`);
        },
      ),
      { seed: SEED, numRuns: 24 },
    );
  });
});

Deno.test("batchnorm subgroup and serial paths on many splits and odd channel counts", async () => {
  // R = 2*7*9 = 126 rows: not a multiple of any subgroup or workgroup size. Splits up to R put
  // many partials in each column (several subgroups per channel block, butterflies for C < 8
  // and masked adds for C = 1), and the column blocks of C = 13 and 37 end part-full.
  for (const C of [1, 3, 5, 13, 37]) {
    for (const splits of [undefined, 37, 126]) {
      for (const subgroups of PATHS) {
        const p = { N: 2, H: 7, W: 9, C, splits, subgroups };
        await checkTrainBackward(
          p,
          inputs(p, 1000 + C),
          `C=${C} splits=${splits} subgroups=${subgroups}`,
        );
      }
    }
  }
});

Deno.test("batchnorm subgroup path is bitwise reproducible run to run", async () => {
  const p = { N: 3, H: 5, W: 7, C: 11, splits: 53, subgroups: true };
  const R = 105, C = 11;
  const v = inputs(p, 77);
  const runOnce = async () => {
    const bufs = [v.x, v.gamma, v.beta, v.rm, v.rv, v.dy].map((a) => uploadF32(g, a));
    const [bx, bg, bb, brm, brv, bdy] = bufs;
    const { y, saved } = batchNormTrain(g, bx, bg, bb, brm, brv, p);
    const { dx, dgamma, dbeta } = batchNormBackward(g, bx, bdy, bg, saved, p);
    const out = [
      ...await readF32(g, saved, 2 * C),
      ...await readF32(g, brv, C),
      ...await readF32(g, dgamma, C),
      ...await readF32(g, dbeta, C),
      ...await readF32(g, dx, R * C),
    ];
    for (const b of [...bufs, y, saved, dx, dgamma, dbeta]) g.pool.release(b);
    return out;
  };
  const a = await runOnce(), b = await runOnce();
  if (a.length !== 5 * C + R * C) throw new Error(`read ${a.length} values`);
  a.forEach((t, i) => {
    if (!Object.is(t, b[i])) throw new Error(`value ${i} differs between runs: ${t} vs ${b[i]}`);
  });
});

Deno.test("batchnorm statistics stay accurate for a large mean (f32 Welford/Chan)", async () => {
  for (const subgroups of PATHS) await largeMean(subgroups);
});

async function largeMean(subgroups: boolean): Promise<void> {
  const p = { N: 4, H: 8, W: 8, C: 3, splits: 5, subgroups };
  const R = 256, C = 3;
  const noise = randomArray(R * C, 7, -1, 1);
  const x = noise.map((v, i) => 10000 + 100 * (i % C) + v);
  const ones = new Float64Array(C).fill(1), zeros = new Float64Array(C);
  const ref = batchNormTrainCpu(x, ones, zeros, zeros, ones, p);
  const bx = uploadF32(g, x), bg = uploadF32(g, ones), bb = uploadF32(g, zeros);
  const brm = uploadF32(g, zeros), brv = uploadF32(g, ones);
  // The f32 input itself is the thing being normalised: compare with the f64 stats of it.
  const x32 = Float64Array.from(Float32Array.from(x));
  const ref32 = batchNormTrainCpu(x32, ones, zeros, zeros, ones, p);
  const { y, saved } = batchNormTrain(g, bx, bg, bb, brm, brv, p);
  const sv = await readF32(g, saved, 2 * C);
  const label = `subgroups=${subgroups}`;
  assertClose(sv.subarray(C), ref32.invstd, 2e-3, `${label} invstd`);
  assertClose(sv.subarray(0, C), ref.mean, 1e-6, `${label} mean`);
  assertClose(await readF32(g, y, R * C), ref32.y, 2e-2, `${label} y`);
  for (const b of [bx, bg, bb, brm, brv, y, saved]) g.pool.release(b);
}

Deno.test("batchnorm eval with fused activations matches the CPU reference", async () => {
  const acts: BnActivation[] = ["none", "relu", "relu6", "silu"];
  for (const [k, activation] of acts.entries()) {
    const p = { N: 2, H: 3, W: 2, C: 5 + k, activation, eps: 1e-3 };
    const R = 12;
    const v = inputs(p, 100 + k);
    const x = v.x.map((t) => 4 * t); // reach the relu6 clamp
    const ref = batchNormEvalCpu(x, v.gamma, v.beta, v.rm, v.rv, p);
    const bufs = [x, v.gamma, v.beta, v.rm, v.rv].map((a) => uploadF32(g, a));
    const y = batchNormEval(g, bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], p);
    assertClose(await readF32(g, y, R * p.C), ref, 1e-5, `eval ${activation}`);
    for (const b of [...bufs, y]) g.pool.release(b);
  }
});

Deno.test("batchnorm matches TensorFlow.js (moments + batchNorm) forward and gradients", async () => {
  for (const [k, p] of [{ N: 2, H: 3, W: 3, C: 4 }, { N: 1, H: 5, W: 1, C: 7 }].entries()) {
    const R = p.N * p.H * p.W;
    const v = inputs(p, 300 + k);
    const shape: [number, number, number, number] = [p.N, p.H, p.W, p.C];
    const f = (x: tf.Tensor, gm: tf.Tensor, bt: tf.Tensor) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, mean, variance, bt, gm, 1e-5);
    };
    const tx = tf.tensor4d(Float32Array.from(v.x), shape);
    const tg = tf.tensor1d(Float32Array.from(v.gamma)), tb = tf.tensor1d(Float32Array.from(v.beta));
    const tdy = tf.tensor4d(Float32Array.from(v.dy), shape);
    const ty = f(tx, tg, tb);
    const [gx, gg, gb] = tf.grads((a, b, c) => f(a, b, c))([tx, tg, tb], tdy);
    const bx = uploadF32(g, v.x), bg = uploadF32(g, v.gamma), bb = uploadF32(g, v.beta);
    const brm = uploadF32(g, v.rm), brv = uploadF32(g, v.rv), bdy = uploadF32(g, v.dy);
    const { y, saved } = batchNormTrain(g, bx, bg, bb, brm, brv, p);
    const { dx, dgamma, dbeta } = batchNormBackward(g, bx, bdy, bg, saved, p);
    assertClose(await readF32(g, y, R * p.C), await ty.data(), 5e-4, "tf y");
    assertClose(await readF32(g, dx, R * p.C), await gx.data(), 2e-3, "tf dx");
    assertClose(await readF32(g, dgamma, p.C), await gg.data(), 1e-3, "tf dgamma");
    assertClose(await readF32(g, dbeta, p.C), await gb.data(), 1e-4, "tf dbeta");
    tf.dispose([tx, tg, tb, tdy, ty, gx, gg, gb]);
    for (const b of [bx, bg, bb, brm, brv, bdy, y, saved, dx, dgamma, dbeta]) g.pool.release(b);
  }
});

Deno.test("running statistics after two training steps follow PyTorch's formula", async () => {
  for (const subgroups of PATHS) await runningTwoSteps(subgroups);
});

async function runningTwoSteps(subgroups: boolean): Promise<void> {
  const p = { N: 3, H: 2, W: 3, C: 4, subgroups };
  const R = 18, C = 4;
  let rm = new Float64Array(C); // PyTorch initial running_mean = 0, running_var = 1
  let rv = new Float64Array(C).fill(1);
  const brm = uploadF32(g, rm), brv = uploadF32(g, rv);
  const gamma = uploadF32(g, new Float64Array(C).fill(1)), beta = uploadF32(g, new Float64Array(C));
  for (const step of [1, 2]) {
    const x = randomArray(R * C, 500 + step, -3 * step, 2 + step);
    const bx = uploadF32(g, x);
    const { y, saved } = batchNormTrain(g, bx, gamma, beta, brm, brv, p);
    // Independent formula: running = 0.9 * running + 0.1 * stat, stat var unbiased (R - 1).
    const x32 = Float32Array.from(x);
    rm = rm.map((m, c) => {
      let s = 0;
      for (let r = 0; r < R; r++) s += x32[r * C + c];
      return 0.9 * m + 0.1 * (s / R);
    });
    rv = rv.map((v, c) => {
      let s = 0, q = 0;
      for (let r = 0; r < R; r++) s += x32[r * C + c];
      for (let r = 0; r < R; r++) q += (x32[r * C + c] - s / R) ** 2;
      return 0.9 * v + 0.1 * (q / (R - 1));
    });
    for (const b of [bx, y, saved]) g.pool.release(b);
  }
  assertClose(await readF32(g, brm, C), rm, 1e-5, `running_mean after 2 steps (sg ${subgroups})`);
  assertClose(await readF32(g, brv, C), rv, 1e-5, `running_var after 2 steps (sg ${subgroups})`);
  for (const b of [brm, brv, gamma, beta]) g.pool.release(b);
}

Deno.test("batchnorm training rejects a single value per channel", () => {
  const b = uploadF32(g, [1, 2]);
  let threw = false;
  try {
    batchNormTrain(g, b, b, b, b, b, { N: 1, H: 1, W: 1, C: 2 });
  } catch {
    threw = true;
  }
  g.pool.release(b);
  if (!threw) throw new Error("expected an error for N*H*W = 1");
});
