/**
 * Gradient checks of the CNN ops through the autodiff tape (the kernels' own tests check
 * them launch by launch): conv2d (groups, stride, padding, dilation, bias, residual and
 * activation), depthwise conv, training-mode batchnorm, pooling, concat and channel scaling.
 */
import fc from "fast-check";
import { dataArb, gradcheck } from "./harness.ts";
import * as cvRef from "../../packages/kernels/ops/conv2d.ts";
import * as bnRef from "../../packages/kernels/ops/batchnorm.ts";
import * as poolRef from "../../packages/kernels/ops/pool.ts";
import * as stRef from "../../packages/kernels/ops/structure.ts";
import { activationCpu } from "../../packages/kernels/ops/gemm.ts";
import { conv2d } from "../../packages/core/ops/conv.ts";
import { batchNorm2d } from "../../packages/core/ops/batchnorm.ts";
import { avgPool2d, globalAvgPool, maxPool2d } from "../../packages/core/ops/pool.ts";
import { channelScale, concatChannels } from "../../packages/core/ops/structure.ts";
import { ones, zeros } from "../../packages/core/tensor.ts";

const small = (max: number) => fc.integer({ min: 1, max });

const convCase = fc.record({
  N: small(2),
  H: small(7),
  W: small(7),
  groups: fc.constantFrom(1, 1, 2, 3),
  cinG: small(3),
  coutG: small(3),
  KH: small(3),
  KW: small(3),
  stride: small(2),
  dil: small(2),
  pads: fc.tuple(fc.nat(2), fc.nat(2), fc.nat(2), fc.nat(2)),
  bias: fc.boolean(),
  residual: fc.boolean(),
  act: fc.constantFrom("none", "relu", "silu") as fc.Arbitrary<"none" | "relu" | "silu">,
}).filter((c) =>
  c.H + c.pads[0] + c.pads[1] >= (c.KH - 1) * c.dil + 1 &&
  c.W + c.pads[2] + c.pads[3] >= (c.KW - 1) * c.dil + 1
).chain((c) => {
  const p = cvRef.conv2dParams({
    N: c.N,
    H: c.H,
    W: c.W,
    Cin: c.cinG * c.groups,
    Cout: c.coutG * c.groups,
    KH: c.KH,
    KW: c.KW,
    strideH: c.stride,
    strideW: c.stride,
    dilationH: c.dil,
    dilationW: c.dil,
    groups: c.groups,
    padTop: c.pads[0],
    padBottom: c.pads[1],
    padLeft: c.pads[2],
    padRight: c.pads[3],
  });
  const { OH, OW } = cvRef.conv2dOutputSize(p);
  return fc.record({
    c: fc.constant(c),
    p: fc.constant(p),
    x: dataArb(p.N * p.H * p.W * p.Cin),
    w: dataArb(p.KH * p.KW * c.cinG * p.Cout),
    b: dataArb(p.Cout),
    r: dataArb(p.N * OH * OW * p.Cout),
  });
});

Deno.test("gradcheck conv2d (groups, stride, asymmetric padding, dilation, bias, residual, activation)", async () => {
  await gradcheck({
    name: "conv2d",
    cases: convCase,
    inputs: ({ p, c, x, w, b, r }) => [
      { shape: [p.N, p.H, p.W, p.Cin], data: x },
      { shape: [p.KH, p.KW, c.cinG, p.Cout], data: w },
      { shape: [p.Cout], data: b },
      { shape: [p.N, cvRef.conv2dOutputSize(p).OH, cvRef.conv2dOutputSize(p).OW, p.Cout], data: r },
    ],
    cpu: ({ p, c }, [x, w, b, r]) =>
      cvRef.conv2dCpu(x, w, p, {
        bias: c.bias ? b : undefined,
        residual: c.residual ? r : undefined,
        activation: c.act,
      }),
    cpuVjp: ({ p, c }, [x, w, b, r], dy) => {
      // Through the activation first, then the linear conv backward.
      const pre = cvRef.conv2dCpu(x, w, p, {
        bias: c.bias ? b : undefined,
        residual: c.residual ? r : undefined,
      });
      const s = (v: number) => 1 / (1 + Math.exp(-v));
      const dpre = dy.map((g, i) =>
        c.act === "relu"
          ? (pre[i] > 0 ? g : 0)
          : c.act === "silu"
          ? g * s(pre[i]) * (1 + pre[i] * (1 - s(pre[i])))
          : g
      );
      const { dx, dw, dbias } = cvRef.conv2dBackwardCpu(x, w, dpre, p);
      return [dx, dw, c.bias ? dbias : null, c.residual ? dpre : null];
    },
    gpu: ({ p, c }, [x, w, b, r]) =>
      conv2d(x, w, {
        stride: p.strideH,
        dilation: p.dilationH,
        padding: [p.padTop, p.padBottom, p.padLeft, p.padRight],
        groups: p.groups,
        bias: c.bias ? b : null,
        residual: c.residual ? r : undefined,
        activation: c.act,
      }),
    tol: () => ({ forward: 1e-4, backward: 2e-4 }),
  }, 14);
  // activationCpu is the kernels' own definition; the test recomputes it independently above.
  void activationCpu;
});

Deno.test("gradcheck depthwise conv2d (groups = channels, 3x3 and 5x5, stride 1 and 2)", async () => {
  const cases = fc.record({
    N: small(2),
    H: fc.integer({ min: 3, max: 8 }),
    W: fc.integer({ min: 3, max: 8 }),
    C: small(6),
    K: fc.constantFrom(3, 5),
    stride: small(2),
    same: fc.boolean(),
  }).filter((c) => c.same || (c.H >= c.K && c.W >= c.K)).chain((c) =>
    fc.record({
      c: fc.constant(c),
      x: dataArb(c.N * c.H * c.W * c.C),
      w: dataArb(c.K * c.K * c.C),
      b: dataArb(c.C),
    })
  );
  const params = (
    c: { N: number; H: number; W: number; C: number; K: number; stride: number; same: boolean },
  ) => {
    const pad = (size: number) => {
      const total = Math.max((Math.ceil(size / c.stride) - 1) * c.stride + c.K - size, 0);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    };
    const [t, b] = c.same ? pad(c.H) : [0, 0], [l, r] = c.same ? pad(c.W) : [0, 0];
    return cvRef.conv2dParams({
      N: c.N,
      H: c.H,
      W: c.W,
      Cin: c.C,
      Cout: c.C,
      KH: c.K,
      KW: c.K,
      groups: c.C,
      strideH: c.stride,
      strideW: c.stride,
      padTop: t,
      padBottom: b,
      padLeft: l,
      padRight: r,
    });
  };
  await gradcheck({
    name: "depthwise",
    cases,
    inputs: ({ c, x, w, b }) => [
      { shape: [c.N, c.H, c.W, c.C], data: x },
      { shape: [c.K, c.K, 1, c.C], data: w },
      { shape: [c.C], data: b },
    ],
    cpu: ({ c }, [x, w, b]) => cvRef.conv2dCpu(x, w, params(c), { bias: b }),
    cpuVjp: ({ c }, [x, w], dy) => {
      const r = cvRef.conv2dBackwardCpu(x, w, dy, params(c));
      return [r.dx, r.dw, r.dbias];
    },
    gpu: ({ c }, [x, w, b]) =>
      conv2d(x, w, { stride: c.stride, padding: c.same ? "same" : 0, groups: c.C, bias: b }),
    tol: () => ({ forward: 1e-4, backward: 2e-4 }),
  }, 10);
});

Deno.test("gradcheck batchnorm2d in training mode (x, gamma, beta)", async () => {
  const cases = fc.record({ N: small(3), H: small(4), W: small(4), C: small(5) })
    .filter((s) => s.N * s.H * s.W > 1)
    .chain((s) =>
      fc.record({
        s: fc.constant(s),
        x: dataArb(s.N * s.H * s.W * s.C, -3, 3),
        gamma: dataArb(s.C, 0.5, 2),
        beta: dataArb(s.C),
      })
    );
  await gradcheck({
    name: "batchnorm",
    cases,
    inputs: ({ s, x, gamma, beta }) => [
      { shape: [s.N, s.H, s.W, s.C], data: x },
      { shape: [s.C], data: gamma },
      { shape: [s.C], data: beta },
    ],
    cpu: ({ s }, [x, g, b]) =>
      bnRef.batchNormTrainCpu(x, g, b, new Float64Array(s.C), new Float64Array(s.C).fill(1), s).y,
    cpuVjp: ({ s }, [x, g, b], dy) => {
      const f = bnRef.batchNormTrainCpu(
        x,
        g,
        b,
        new Float64Array(s.C),
        new Float64Array(s.C).fill(1),
        s,
      );
      const r = bnRef.batchNormBackwardCpu(x, dy, g, f.mean, f.invstd, s);
      return [r.dx, r.dgamma, r.dbeta];
    },
    gpu: ({ s }, [x, weight, bias]) =>
      batchNorm2d(x, {
        weight,
        bias,
        runningMean: zeros([s.C]),
        runningVar: ones([s.C]),
        eps: 1e-5,
        momentum: 0.1,
      }, true),
    tol: () => ({ forward: 2e-4, backward: 1e-3 }),
  }, 12);
});

const poolCase = fc.record({
  N: small(2),
  H: fc.integer({ min: 2, max: 7 }),
  W: fc.integer({ min: 2, max: 7 }),
  C: small(4),
  k: fc.constantFrom(2, 3),
  s: small(2),
  pad: fc.nat(1),
}).filter((c) => c.H + 2 * c.pad >= c.k && c.W + 2 * c.pad >= c.k && c.pad * 2 <= c.k)
  .chain((c) =>
    fc.record({
      c: fc.constant(c),
      // Distinct values: a max pool's gradient is only defined without ties.
      x: dataArb(c.N * c.H * c.W * c.C).map((a) => a.map((v, i) => Math.fround(v + i * 1e-4))),
    })
  );

for (const kind of ["max", "avg"] as const) {
  Deno.test(`gradcheck ${kind} pool`, async () => {
    const p = (
      c: { N: number; H: number; W: number; C: number; k: number; s: number; pad: number },
    ) => ({ N: c.N, H: c.H, W: c.W, C: c.C, kernel: c.k, stride: c.s, padding: c.pad });
    await gradcheck({
      name: `${kind}Pool`,
      cases: poolCase,
      inputs: ({ c, x }) => [{ shape: [c.N, c.H, c.W, c.C], data: x }],
      cpu: ({ c }, [x]) =>
        kind === "max" ? poolRef.maxPool2dCpu(x, p(c)).y : poolRef.avgPool2dCpu(x, p(c)),
      cpuVjp: ({ c }, [x], dy) => [
        kind === "max"
          ? poolRef.maxPool2dBackwardCpu(dy, poolRef.maxPool2dCpu(x, p(c)).argmax, p(c))
          : poolRef.avgPool2dBackwardCpu(dy, p(c)),
      ],
      gpu: ({ c }, [x]) =>
        (kind === "max" ? maxPool2d : avgPool2d)(x, { kernel: c.k, stride: c.s, padding: c.pad }),
    });
  });
}

Deno.test("gradcheck global average pool", async () => {
  const cases = fc.record({ N: small(3), H: small(6), W: small(6), C: small(5) }).chain((s) =>
    fc.record({ s: fc.constant(s), x: dataArb(s.N * s.H * s.W * s.C) })
  );
  await gradcheck({
    name: "globalAvgPool",
    cases,
    inputs: ({ s, x }) => [{ shape: [s.N, s.H, s.W, s.C], data: x }],
    cpu: ({ s }, [x]) => poolRef.globalAvgPoolCpu(x, s),
    cpuVjp: ({ s }, [_x], dy) => [poolRef.globalAvgPoolBackwardCpu(dy, s)],
    gpu: (_c, [x]) => globalAvgPool(x),
  });
});

Deno.test("gradcheck channel concat (DenseNet) and channel scale (squeeze-excitation)", async () => {
  const cases = fc.record({
    N: small(2),
    H: small(4),
    W: small(4),
    c1: small(5),
    c2: small(5),
    c3: small(3),
  })
    .chain((s) => {
      const rows = s.N * s.H * s.W;
      return fc.record({
        s: fc.constant(s),
        a: dataArb(rows * s.c1),
        b: dataArb(rows * s.c2),
        c: dataArb(rows * s.c3),
        k: dataArb(s.N * (s.c1 + s.c2 + s.c3)),
      });
    });
  await gradcheck({
    name: "concat+scale",
    cases,
    inputs: ({ s, a, b, c, k }) => [
      { shape: [s.N, s.H, s.W, s.c1], data: a },
      { shape: [s.N, s.H, s.W, s.c2], data: b },
      { shape: [s.N, s.H, s.W, s.c3], data: c },
      { shape: [s.N, s.c1 + s.c2 + s.c3], data: k },
    ],
    cpu: ({ s }, [a, b, c, k]) => {
      const cat = stRef.concatCpu([a, b, c], s.N * s.H * s.W);
      return stRef.channelScaleCpu(cat, k, { N: s.N, H: s.H, W: s.W, C: s.c1 + s.c2 + s.c3 });
    },
    cpuVjp: ({ s }, [a, b, c, k], dy) => {
      const rows = s.N * s.H * s.W, C = s.c1 + s.c2 + s.c3;
      const cat = stRef.concatCpu([a, b, c], rows);
      const { dx, ds } = stRef.channelScaleBackwardCpu(cat, k, dy, { N: s.N, H: s.H, W: s.W, C });
      return [
        stRef.sliceChannelsCpu(dx, { rows, inC: C, outC: s.c1, offset: 0 }),
        stRef.sliceChannelsCpu(dx, { rows, inC: C, outC: s.c2, offset: s.c1 }),
        stRef.sliceChannelsCpu(dx, { rows, inC: C, outC: s.c3, offset: s.c1 + s.c2 }),
        ds,
      ];
    },
    gpu: (_c, [a, b, c, k]) => channelScale(concatChannels([a, b, c]), k),
  });
});
