import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { initGpu } from "../runtime/gpu.ts";
import {
  channelScale,
  channelScaleBackward,
  channelScaleBackwardCpu,
  channelScaleCpu,
  concat,
  concatCpu,
  type Dims4,
  hwioToOihw,
  inversePerm,
  nchwToNhwc,
  nhwcToNchw,
  oihwToHwio,
  permute4,
  permute4Cpu,
  permutedDims,
  sliceChannels,
  sliceChannelsCpu,
  splitChannels,
} from "./structure.ts";
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
const SEED = Number(Deno.env.get("FC_SEED") ?? 5150);

function check(name: string, run: () => Promise<void> | void): Promise<void> {
  return withSeed(name, SEED, run);
}

const PERMS: Dims4[] = [];
for (let a = 0; a < 4; a++) {
  for (let b = 0; b < 4; b++) {
    for (let c = 0; c < 4; c++) {
      const d = 6 - a - b - c;
      if (new Set([a, b, c, d]).size === 4) PERMS.push([a, b, c, d]);
    }
  }
}

const concatArb = fc.record({
  rows: fc.integer({ min: 1, max: 13 }),
  channels: fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 4 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});
const scaleArb = fc.record({
  N: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 5 }),
  W: fc.integer({ min: 1, max: 4 }),
  C: fc.integer({ min: 1, max: 40 }),
  shared: fc.boolean(),
  // The subgroup ds reduction when the adapter has subgroups (lavapipe does); else serial/shared.
  subgroups: fc.boolean().map((b) => b && g.info.subgroups),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});
const permArb = fc.record({
  dims: fc.tuple(
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 4 }),
  ),
  perm: fc.constantFrom(...PERMS),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

Deno.test("structure CPU backward references match central finite differences", async () => {
  await check("structure finite differences", () => {
    fc.assert(
      fc.property(concatArb, scaleArb, permArb, (cc, sc, pc) => {
        // concat: backward is one slice per input
        const xs = cc.channels.map((ch, k) => randomArray(cc.rows * ch, cc.seed + k));
        const outC = cc.channels.reduce((a, b) => a + b, 0);
        const dy = randomArray(cc.rows * outC, cc.seed + 99);
        const fd = finiteDiffVjp((a) => concatCpu(a, cc.rows), xs, dy);
        let offset = 0;
        cc.channels.forEach((ch, k) => {
          const p = { rows: cc.rows, inC: outC, outC: ch, offset };
          assertClose(sliceChannelsCpu(dy, p), fd[k], 1e-6, `concat input ${k}`);
          offset += ch;
        });
        // channel scale
        const n = sc.N * sc.H * sc.W * sc.C;
        const x = randomArray(n, sc.seed), s = randomArray(sc.N * sc.C, sc.seed + 1);
        const sdy = randomArray(n, sc.seed + 2);
        const [fdx, fds] = finiteDiffVjp((a) => channelScaleCpu(a[0], a[1], sc), [x, s], sdy);
        const ref = channelScaleBackwardCpu(x, s, sdy, sc);
        assertClose(ref.dx, fdx, 1e-6, "scale dx");
        assertClose(ref.ds, fds, 1e-6, "scale ds");
        // permute: backward is the inverse permute
        const pn = pc.dims.reduce((a, b) => a * b, 1);
        const px = randomArray(pn, pc.seed), pdy = randomArray(pn, pc.seed + 1);
        const [fpx] = finiteDiffVjp((a) => permute4Cpu(a[0], pc.dims, pc.perm), [px], pdy);
        const back = permute4Cpu(pdy, permutedDims(pc.dims, pc.perm), inversePerm(pc.perm));
        assertClose(back, fpx, 1e-6, "permute");
      }),
      { seed: SEED, numRuns: 25 },
    );
  });
});

Deno.test("concat / slice / split on the GPU match the CPU reference", async () => {
  await check("concat gpu", async () => {
    await fc.assert(
      fc.asyncProperty(concatArb, async ({ rows, channels, seed }) => {
        const xs = channels.map((ch, k) => randomArray(rows * ch, seed + k));
        const bufs = xs.map((x) => uploadF32(g, x));
        const out = concat(g, bufs, { rows, channels });
        const outC = channels.reduce((a, b) => a + b, 0);
        const ref = Float32Array.from(concatCpu(xs, rows)); // exact copies of the f32 inputs
        assertClose(await readF32(g, out, rows * outC), ref, 0, "concat");
        const parts = splitChannels(g, out, { rows, channels });
        for (const [k, part] of parts.entries()) {
          assertClose(
            await readF32(g, part, rows * channels[k]),
            Float32Array.from(xs[k]),
            0,
            `split ${k}`,
          );
        }
        const off = Math.floor(outC / 3), w = Math.max(1, outC - 2 * off);
        const sp = { rows, inC: outC, outC: w, offset: off };
        const sl = sliceChannels(g, out, sp);
        assertClose(
          await readF32(g, sl, rows * w),
          sliceChannelsCpu(Float64Array.from(ref), sp),
          0,
          "slice",
        );
        for (const b of [...bufs, out, ...parts, sl]) g.pool.release(b);
      }),
      { seed: SEED, numRuns: 10 },
    );
  });
});

Deno.test("channel scale forward/backward (all ds reductions) match the CPU reference", async () => {
  await check("scale gpu", async () => {
    await fc.assert(
      fc.asyncProperty(scaleArb, async (p) => {
        const n = p.N * p.H * p.W * p.C;
        const x = randomArray(n, p.seed), s = randomArray(p.N * p.C, p.seed + 1);
        const dy = randomArray(n, p.seed + 2);
        const bx = uploadF32(g, x), bs = uploadF32(g, s), bdy = uploadF32(g, dy);
        const y = channelScale(g, bx, bs, p);
        const { dx, ds } = channelScaleBackward(g, bx, bs, bdy, p);
        const ref = channelScaleBackwardCpu(x, s, dy, p);
        assertClose(await readF32(g, y, n), channelScaleCpu(x, s, p), 1e-6, "y");
        assertClose(await readF32(g, dx, n), ref.dx, 1e-6, "dx");
        assertClose(
          await readF32(g, ds, p.N * p.C),
          ref.ds,
          1e-5,
          `ds shared=${p.shared} subgroups=${p.subgroups}`,
        );
        for (const b of [bx, bs, bdy, y, dx, ds]) g.pool.release(b);
      }),
      { seed: SEED, numRuns: 10 },
    );
  });
});

Deno.test("permutes on the GPU match the CPU reference", async () => {
  await check("permute gpu", async () => {
    await fc.assert(
      fc.asyncProperty(permArb, async ({ dims, perm, seed }) => {
        const n = dims.reduce((a, b) => a * b, 1);
        const x = randomArray(n, seed);
        const bx = uploadF32(g, x);
        const y = permute4(g, bx, dims, perm);
        assertClose(
          await readF32(g, y, n),
          Float32Array.from(permute4Cpu(x, dims, perm)),
          0,
          `perm ${perm}`,
        );
        for (const b of [bx, y]) g.pool.release(b);
      }),
      { seed: SEED, numRuns: 10 },
    );
  });
});

Deno.test("weight layout converters put w[o,i,kh,kw] at [kh,kw,i,o] (hand-indexed)", async () => {
  const [O, I, KH, KW] = [3, 2, 3, 2];
  const w = new Float64Array(O * I * KH * KW);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      for (let h = 0; h < KH; h++) {
        for (let k = 0; k < KW; k++) {
          w[((o * I + i) * KH + h) * KW + k] = 1000 * o + 100 * i + 10 * h + k;
        }
      }
    }
  }
  const bw = uploadF32(g, w);
  const hwio = oihwToHwio(g, bw, { O, I, KH, KW });
  const got = await readF32(g, hwio, w.length);
  for (let h = 0; h < KH; h++) {
    for (let k = 0; k < KW; k++) {
      for (let i = 0; i < I; i++) {
        for (let o = 0; o < O; o++) {
          const v = got[((h * KW + k) * I + i) * O + o];
          if (v !== 1000 * o + 100 * i + 10 * h + k) {
            throw new Error(`hwio[${h},${k},${i},${o}] = ${v}`);
          }
        }
      }
    }
  }
  const back = hwioToOihw(g, hwio, { KH, KW, I, O });
  assertClose(await readF32(g, back, w.length), w, 0, "round trip"); // integers: exact in f32
  // depthwise [C, 1, KH, KW] -> [KH, KW, 1, C]: the same permutation with I = 1
  const C = 5;
  const dw = new Float64Array(C * KH * KW).map((_, j) => j);
  const bdw = uploadF32(g, dw);
  const bhwc = oihwToHwio(g, bdw, { O: C, I: 1, KH, KW });
  const hwc = await readF32(g, bhwc, dw.length);
  for (let c = 0; c < C; c++) {
    for (let h = 0; h < KH; h++) {
      for (let k = 0; k < KW; k++) {
        const v = hwc[(h * KW + k) * C + c];
        if (v !== dw[(c * KH + h) * KW + k]) throw new Error(`dw[${h},${k},${c}] = ${v}`);
      }
    }
  }
  for (const b of [bw, hwio, back, bdw, bhwc]) g.pool.release(b);
});

Deno.test("structure ops match TensorFlow.js (concat, transpose, broadcast mul) and grads", async () => {
  const [N, H, W] = [2, 3, 2], chans = [3, 1, 4];
  const rows = N * H * W;
  const xs = chans.map((c, k) => randomArray(rows * c, 70 + k));
  const txs = xs.map((x, k) => tf.tensor4d(Float32Array.from(x), [N, H, W, chans[k]]));
  const tcat = tf.concat(txs, 3);
  const bufs = xs.map((x) => uploadF32(g, x));
  const cat = concat(g, bufs, { rows, channels: chans });
  const catData = await readF32(g, cat, rows * 8);
  assertClose(catData, await tcat.data(), 0, "tf concat");
  const dyc = randomArray(rows * 8, 80);
  const tdyc = tf.tensor4d(Float32Array.from(dyc), [N, H, W, 8]);
  const gcat = tf.grads((a, b, c) => tf.concat([a, b, c], 3))(txs, tdyc);
  const bdyc = uploadF32(g, dyc);
  const parts = splitChannels(g, bdyc, { rows, channels: chans });
  for (const [k, part] of parts.entries()) {
    assertClose(
      await readF32(g, part, rows * chans[k]),
      await gcat[k].data(),
      0,
      `tf dconcat ${k}`,
    );
  }
  // NHWC -> NCHW and back, vs tf.transpose
  const C = 8;
  const tnchw = tf.transpose(tcat, [0, 3, 1, 2]);
  const nchw = nhwcToNchw(g, cat, { N, H, W, C });
  assertClose(await readF32(g, nchw, rows * C), await tnchw.data(), 0, "tf transpose");
  const nhwc = nchwToNhwc(g, nchw, { N, C, H, W });
  assertClose(await readF32(g, nhwc, rows * C), catData, 0, "round trip");
  // channel scale vs x * s.reshape([N,1,1,C])
  const s = randomArray(N * C, 81);
  const ts = tf.tensor2d(Float32Array.from(s), [N, C]);
  const f = (x: tf.Tensor, sc: tf.Tensor) => tf.mul(x, tf.reshape(sc, [N, 1, 1, C]));
  const ty = f(tcat, ts);
  const [gx, gs] = tf.grads(f)([tcat, ts], tdyc);
  const bs = uploadF32(g, s);
  const y = channelScale(g, cat, bs, { N, H, W, C });
  const { dx, ds } = channelScaleBackward(g, cat, bs, bdyc, { N, H, W, C });
  assertClose(await readF32(g, y, rows * C), await ty.data(), 1e-6, "tf scale y");
  assertClose(await readF32(g, dx, rows * C), await gx.data(), 1e-6, "tf scale dx");
  assertClose(await readF32(g, ds, N * C), await gs.data(), 1e-5, "tf scale ds");
  tf.dispose([...txs, tcat, tdyc, ...gcat, tnchw, ts, ty, gx, gs]);
  for (const b of [...bufs, cat, bdyc, ...parts, nchw, nhwc, bs, y, dx, ds]) g.pool.release(b);
});
