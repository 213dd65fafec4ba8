/**
 * Kernel benchmark: ms, GFLOP/s and GB/s of our WGSL kernels on the real layer shapes of the
 * four models (benches/shapes.ts) and on square matmuls, next to the same ops through
 * TensorFlow.js's WebGPU backend on the same device (benches/tfjs_webgpu.ts). GPU time comes
 * from timestamp queries at pass boundaries where the adapter has them (runtime/timer.ts),
 * else from the wall clock around a sync.
 *
 *   deno task bench [--quick] [--batch 64] [--size 224] [--models a,b] [--ops conv,depthwise,
 *                   bn,pool,matmul] [--max-per-model N] [--matmul 1024,2048,4096]
 *                   [--iterations 5] [--warmup 2] [--no-tfjs] [--no-check] [--tune]
 *                   [--budget-s S] [--out FILE]
 *
 * --quick: batch 8 at 64 px, 4 conv shapes (2 depthwise, 1 BN, 1 pool) per model, matmul
 * 256/512: a couple of minutes on llvmpipe. --tune: also time every GEMM tile config on each
 * conv/matmul case and report the best one next to the default (chooseGemmConfig).
 * Writes benches/results/<adapter-slug>-<date>[-quick].json unless --out is given.
 */
import { parseArgs } from "node:util";
import { initGpu } from "../packages/kernels/runtime/gpu.ts";
import { GpuTimer, median, timeRecorded } from "../packages/kernels/runtime/timer.ts";
import { adapterSlug, Autotuner, type Candidate } from "../packages/kernels/runtime/autotune.ts";
import { gridFor } from "../packages/kernels/runtime/grid.ts";
import {
  chooseGemmConfig,
  GEMM_REGISTER,
  GEMM_REGISTER_SMALL,
  GEMM_SHARED_LARGE,
  GEMM_SHARED_MEDIUM,
  GEMM_SHARED_SMALL,
  type GemmConfig,
  type GemmSpec,
} from "../packages/kernels/ops/gemm.ts";
import * as conv from "../packages/kernels/ops/conv2d.ts";
import * as dw from "../packages/kernels/ops/depthwise.ts";
import * as bn from "../packages/kernels/ops/batchnorm.ts";
import * as pool from "../packages/kernels/ops/pool.ts";
import { matmul, matmulSpec } from "../packages/kernels/ops/matmul.ts";
import { type Layer, MODEL_NAMES, modelLayers, type ModelName } from "./shapes.ts";
import type * as TfMod from "./tfjs_webgpu.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    batch: { type: "string" },
    size: { type: "string" },
    models: { type: "string" },
    ops: { type: "string", default: "conv,depthwise,bn,pool,matmul" },
    "max-per-model": { type: "string" },
    matmul: { type: "string" },
    iterations: { type: "string" },
    warmup: { type: "string" },
    "no-tfjs": { type: "boolean", default: false },
    "no-check": { type: "boolean", default: false },
    tune: { type: "boolean", default: false },
    "budget-s": { type: "string" },
    out: { type: "string" },
  },
});

const quick = values.quick;
const batch = Number(values.batch ?? (quick ? 8 : 64));
const size = Number(values.size ?? (quick ? 64 : 224));
const iterations = Number(values.iterations ?? (quick ? 3 : 5));
const warmup = Number(values.warmup ?? (quick ? 1 : 2));
const perModel = Number(values["max-per-model"] ?? (quick ? 4 : Infinity));
const matmulSizes = (values.matmul ?? (quick ? "256,512" : "1024,2048,4096")).split(",").map(
  Number,
);
const wantedOps = new Set(values.ops.split(","));
/** Stop starting new layer shapes after this many seconds (matmuls always run). */
const budgetS = Number(values["budget-s"] ?? Infinity);
const models = (values.models?.split(",") ?? MODEL_NAMES) as ModelName[];
for (const m of models) if (!MODEL_NAMES.includes(m)) throw new Error(`unknown model ${m}`);

const g = await initGpu();
const timer = new GpuTimer(g);
/** TF.js, loaded dynamically: without its npm packages the benchmark still measures ours. */
let T = null as unknown as typeof TfMod;
async function loadTfjs(): Promise<TfMod.TfjsWebgpu | { error: string }> {
  if (values["no-tfjs"]) return { error: "disabled by --no-tfjs" };
  try {
    T = await import("./tfjs_webgpu.ts");
  } catch (e) {
    return { error: `cannot load @tensorflow/tfjs-backend-webgpu: ${(e as Error).message}` };
  }
  return await T.initTfjsWebgpu(g);
}
const tfr = await loadTfjs();
const tfjs = "backend" in tfr ? tfr : null;
console.log(
  `kernels bench on ${g.info.name} (timer: ${timer.mode}); batch ${batch}, ${size}px, ` +
    `${iterations} iterations after ${warmup} warm-up; tfjs-webgpu: ${
      tfjs ? "ok" : (tfr as { error: string }).error
    }`,
);

// ---------------------------------------------------------------------------------------------
// Inputs

const FILL = (n: number, seed: number) => {
  const grid = gridFor(n, 256);
  return `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  var h = i * 747796405u + ${(seed * 2891336453) >>> 0}u;
  h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
  h = (h >> 22u) ^ h;
  y[i] = f32(h >> 8u) / 8388608.0 - 1.0;
}`;
};
let seed = 1;
/** A pooled buffer of n pseudo-random values in [-1, 1), filled on the GPU. */
function random(n: number): GPUBuffer {
  const b = g.pool.acquire(4 * n);
  g.run(FILL(n, seed++), [b], gridFor(n, 256).workgroups);
  // Submit now: tfjs copies our buffers (fromOurs) in a submit of its own.
  g.batcher.flush();
  return b;
}
function constant(n: number, v: number): GPUBuffer {
  return g.upload(new Float32Array(n).fill(v));
}

// ---------------------------------------------------------------------------------------------
// Cases

interface Case {
  op: string;
  shape: string;
  layer?: Layer;
  /** Shape as numbers when there is no layer (matmul). */
  params?: Record<string, unknown>;
  models: string[];
  count: number;
  flops: number;
  bytes: number;
  /** Records our launch(es); returns the outputs (the first is compared with tfjs). */
  ours: () => GPUBuffer[];
  /** Elements of our first output. */
  outElements: number;
  /** The same op through tfjs (first tensor compared). */
  tf?: () => TfMod.tf.Tensor | TfMod.tf.Tensor[];
  /** GEMM-based ops: the problem and a launch with an explicit tile config. */
  gemm?: { spec: GemmSpec; run: (c: GemmConfig) => GPUBuffer[] };
}

export interface Result {
  op: string;
  shape: string;
  /** The shape as numbers ({ kind, ...params }), for the PyTorch reference to rebuild it. */
  params: Record<string, unknown>;
  models: string[];
  count: number;
  flops: number;
  bytes: number;
  ours: Timing | null;
  tfjs: Timing | null;
  /** max |ours - tfjs| / max |tfjs| over (a prefix of) the first output. */
  relErr?: number;
  config?: string;
  error?: string;
  tune?: { best: string; bestMs: number; defaultMs: number; ms: Record<string, number> };
}

interface Timing {
  ms: number;
  msMin: number;
  gflops: number;
  gbps: number;
}

const timing = (times: number[], flops: number, bytes: number): Timing => {
  const ms = median(times);
  return {
    ms,
    msMin: Math.min(...times),
    gflops: flops / (ms * 1e6),
    gbps: bytes / (ms * 1e6),
  };
};

const configName = (c: GemmConfig) => `${c.variant} ${c.BM}x${c.BN}x${c.BK} t${c.TM}x${c.TN}`;

const F = 4; // bytes per f32

function convCases(l: Layer, p: conv.Conv2dParams, models: string[]): Case[] {
  const { OH, OW } = conv.conv2dOutputSize(p);
  const xN = p.N * p.H * p.W * p.Cin, yN = p.N * OH * OW * p.Cout;
  const wN = p.KH * p.KW * (p.Cin / p.groups) * p.Cout;
  const flops = 2 * p.N * OH * OW * p.Cout * p.KH * p.KW * (p.Cin / p.groups);
  const x = random(xN), w = random(wN), dy = random(yN), bias = random(p.Cout);
  const strides: [number, number] = [p.strideH, p.strideW];
  const pad = T.explicitPad(p.padTop, p.padBottom, p.padLeft, p.padRight);
  let tx: TfMod.tf.Tensor4D | null = null, tw: TfMod.tf.Tensor4D | null = null;
  let tdy: TfMod.tf.Tensor4D | null = null, tb: TfMod.tf.Tensor1D | null = null;
  if (tfjs) {
    tx = T.fromOurs(x, [p.N, p.H, p.W, p.Cin]) as TfMod.tf.Tensor4D;
    tw = T.fromOurs(w, [p.KH, p.KW, p.Cin, p.Cout]) as TfMod.tf.Tensor4D;
    tdy = T.fromOurs(dy, [p.N, OH, OW, p.Cout]) as TfMod.tf.Tensor4D;
    tb = T.fromOurs(bias, [p.Cout]) as TfMod.tf.Tensor1D;
  }
  const base = { shape: l.key, layer: l, models, count: l.count, flops };
  const cases: Case[] = [
    {
      ...base,
      op: "conv2d.fwd",
      bytes: F * (xN + wN + yN),
      ours: () => [conv.conv2d(g, x, w, p)],
      outElements: yN,
      tf: tfjs ? () => T.tf.conv2d(tx!, tw!, strides, pad) : undefined,
      gemm: {
        spec: conv.conv2dSpec(p),
        run: (config) => [conv.conv2d(g, x, w, p, { config })],
      },
    },
    {
      ...base,
      op: "conv2d.dx",
      bytes: F * (yN + wN + xN),
      ours: () => [conv.conv2dBackwardInput(g, dy, w, p)],
      outElements: xN,
      tf: tfjs
        ? () => T.conv2dBackpropInput(tdy!, tw!, [p.N, p.H, p.W, p.Cin], strides, pad)
        : undefined,
      gemm: {
        // At stride > 1 dx runs by phases; the first (largest) phase stands for its shape.
        spec: conv.usesPhases(p)
          ? conv.conv2dBackwardInputPhaseSpecs(p)[0]
          : conv.conv2dBackwardInputSpec(p),
        run: (config) => [conv.conv2dBackwardInput(g, dy, w, p, config)],
      },
    },
    {
      ...base,
      op: "conv2d.dw",
      bytes: F * (xN + yN + wN),
      ours: () => [conv.conv2dBackwardWeight(g, x, dy, p)],
      outElements: wN,
      tf: tfjs
        ? () => T.conv2dBackpropFilter(tx!, tdy!, [p.KH, p.KW, p.Cin, p.Cout], strides, pad)
        : undefined,
      gemm: {
        spec: conv.conv2dBackwardWeightSpec(p),
        run: (config) => [conv.conv2dBackwardWeight(g, x, dy, p, { config })],
      },
    },
  ];
  if (l.model === "resnet18" && p.KH === 3) {
    cases.push({
      ...base,
      op: "conv2d.fwd+bias+relu",
      bytes: F * (xN + wN + yN + p.Cout),
      ours: () => [conv.conv2d(g, x, w, p, { bias, activation: "relu" })],
      outElements: yN,
      tf: tfjs
        ? () =>
          T.tf.fused.conv2d({ x: tx!, filter: tw!, strides, pad, bias: tb!, activation: "relu" })
        : undefined,
    });
  }
  cleanups.push(() => {
    for (const b of [x, w, dy, bias]) g.pool.release(b);
    for (const t of [tx, tw, tdy, tb]) t?.dispose();
  });
  return cases;
}

function depthwiseCases(l: Layer, p: dw.DepthwiseParams, models: string[]): Case[] {
  const { OH, OW } = dw.depthwiseOutputSize(p);
  const xN = p.N * p.H * p.W * p.C, yN = p.N * OH * OW * p.C, wN = p.KH * p.KW * p.C;
  const flops = 2 * p.N * OH * OW * p.C * p.KH * p.KW;
  const x = random(xN), w = random(wN), dy = random(yN);
  const strides: [number, number] = [p.strideH, p.strideW];
  const pad = T.explicitPad(p.padTop, p.padBottom, p.padLeft, p.padRight);
  let tx: TfMod.tf.Tensor4D | null = null, tw: TfMod.tf.Tensor4D | null = null;
  let tdy: TfMod.tf.Tensor4D | null = null;
  if (tfjs) {
    tx = T.fromOurs(x, [p.N, p.H, p.W, p.C]) as TfMod.tf.Tensor4D;
    tw = T.fromOurs(w, [p.KH, p.KW, p.C, 1]) as TfMod.tf.Tensor4D;
    tdy = T.fromOurs(dy, [p.N, OH, OW, p.C]) as TfMod.tf.Tensor4D;
  }
  const base = { shape: l.key, layer: l, models, count: l.count, flops, bytes: F * (xN + wN + yN) };
  cleanups.push(() => {
    for (const b of [x, w, dy]) g.pool.release(b);
    for (const t of [tx, tw, tdy]) t?.dispose();
  });
  return [
    {
      ...base,
      op: "depthwise.fwd",
      ours: () => [dw.depthwise(g, x, w, p)],
      outElements: yN,
      tf: tfjs ? () => T.tf.depthwiseConv2d(tx!, tw!, strides, pad) : undefined,
    },
    {
      ...base,
      op: "depthwise.dx",
      ours: () => [dw.depthwiseBackwardInput(g, dy, w, p)],
      outElements: xN,
      tf: tfjs
        ? () => T.depthwiseBackpropInput(tdy!, tw!, [p.N, p.H, p.W, p.C], strides, pad)
        : undefined,
    },
    {
      ...base,
      op: "depthwise.dw",
      ours: () => [dw.depthwiseBackwardWeight(g, x, dy, p)],
      outElements: wN,
      tf: tfjs
        ? () => T.depthwiseBackpropFilter(tx!, tdy!, [p.KH, p.KW, p.C, 1], strides, pad)
        : undefined,
    },
  ];
}

function bnCases(l: Layer, p: bn.BatchNormParams, models: string[]): Case[] {
  const n = p.N * p.H * p.W * p.C;
  const x = random(n), dy = random(n), gamma = constant(p.C, 1.5), beta = constant(p.C, 0.25);
  const rm = constant(p.C, 0), rv = constant(p.C, 1);
  const { saved, y } = bn.batchNormTrain(g, x, gamma, beta, rm, rv, p);
  g.pool.release(y);
  let tx: TfMod.tf.Tensor4D | null = null, tdy: TfMod.tf.Tensor4D | null = null;
  let tg: TfMod.tf.Tensor1D | null = null, tb: TfMod.tf.Tensor1D | null = null;
  if (tfjs) {
    tx = T.fromOurs(x, [p.N, p.H, p.W, p.C]) as TfMod.tf.Tensor4D;
    tdy = T.fromOurs(dy, [p.N, p.H, p.W, p.C]) as TfMod.tf.Tensor4D;
    tg = T.fromOurs(gamma, [p.C]) as TfMod.tf.Tensor1D;
    tb = T.fromOurs(beta, [p.C]) as TfMod.tf.Tensor1D;
  }
  cleanups.push(() => {
    for (const b of [x, dy, gamma, beta, rm, rv, saved]) g.pool.release(b);
    for (const t of [tx, tdy, tg, tb]) t?.dispose();
  });
  const base = { shape: l.key, layer: l, models, count: l.count, flops: 8 * n };
  return [
    {
      ...base,
      op: "batchnorm.train",
      bytes: F * 2 * n,
      ours: () => {
        const r = bn.batchNormTrain(g, x, gamma, beta, rm, rv, p);
        return [r.y, r.saved];
      },
      outElements: n,
      tf: tfjs ? () => T.batchNormTrain(tx!, tg!, tb!) : undefined,
    },
    {
      ...base,
      op: "batchnorm.backward",
      bytes: F * 3 * n,
      ours: () => {
        const r = bn.batchNormBackward(g, x, dy, gamma, saved, p);
        return [r.dx, r.dgamma, r.dbeta];
      },
      outElements: n,
      tf: tfjs ? () => T.batchNormBackward(tx!, tdy!, tg!) : undefined,
    },
  ];
}

function poolCases(l: Layer, models: string[]): Case[] {
  const base = { shape: l.key, layer: l, models, count: l.count };
  if (l.op.kind === "gap") {
    const p = l.op.p, n = p.N * p.H * p.W * p.C;
    const x = random(n), dy = random(p.N * p.C);
    const tx = tfjs ? T.fromOurs(x, [p.N, p.H, p.W, p.C]) : null;
    cleanups.push(() => {
      g.pool.release(x);
      g.pool.release(dy);
      tx?.dispose();
    });
    return [{
      ...base,
      op: "gap.fwd",
      flops: n,
      bytes: F * (n + p.N * p.C),
      ours: () => [pool.globalAvgPool(g, x, p)],
      outElements: p.N * p.C,
      tf: tfjs ? () => T.tf.mean(tx!, [1, 2]) : undefined,
    }, {
      ...base,
      op: "gap.backward",
      flops: n,
      bytes: F * (n + p.N * p.C),
      ours: () => [pool.globalAvgPoolBackward(g, dy, p)],
      outElements: n,
    }];
  }
  if (l.op.kind !== "maxpool" && l.op.kind !== "avgpool") return [];
  const kind = l.op.kind, q = l.op.p;
  const pp = { N: q.N, H: q.H, W: q.W, C: q.C, kernel: q.k, stride: q.s, padding: q.pad };
  const { OH, OW } = pool.pool2dGeometry(pp);
  const xN = q.N * q.H * q.W * q.C, yN = q.N * OH * OW * q.C;
  const x = random(xN), dy = random(yN);
  const fwd = kind === "maxpool" ? pool.maxPool2d(g, x, pp) : null;
  let tx: TfMod.tf.Tensor4D | null = null, tdy: TfMod.tf.Tensor4D | null = null;
  let ty: TfMod.tf.Tensor4D | null = null;
  if (tfjs) {
    tx = T.fromOurs(x, [q.N, q.H, q.W, q.C]) as TfMod.tf.Tensor4D;
    tdy = T.fromOurs(dy, [q.N, OH, OW, q.C]) as TfMod.tf.Tensor4D;
    ty = kind === "maxpool" ? T.tf.maxPool(tx, q.k, q.s, q.pad) : null;
  }
  cleanups.push(() => {
    for (const b of [x, dy]) g.pool.release(b);
    if (fwd) [fwd.y, fwd.argmax].forEach((b) => g.pool.release(b));
    for (const t of [tx, tdy, ty]) t?.dispose();
  });
  const flops = yN * q.k * q.k;
  if (kind === "maxpool") {
    return [{
      ...base,
      op: "maxpool.fwd",
      flops,
      bytes: F * (xN + yN),
      ours: () => {
        const r = pool.maxPool2d(g, x, pp);
        return [r.y, r.argmax];
      },
      outElements: yN,
      tf: tfjs ? () => T.tf.maxPool(tx!, q.k, q.s, q.pad) : undefined,
    }, {
      ...base,
      op: "maxpool.backward",
      flops,
      bytes: F * (xN + 2 * yN),
      ours: () => [pool.maxPool2dBackward(g, dy, fwd!.argmax, pp)],
      outElements: xN,
      tf: tfjs ? () => T.maxPoolGrad(tdy!, tx!, ty!, q.k, q.s, q.pad) : undefined,
    }];
  }
  return [{
    ...base,
    op: "avgpool.fwd",
    flops,
    bytes: F * (xN + yN),
    ours: () => [pool.avgPool2d(g, x, pp)],
    outElements: yN,
    tf: tfjs ? () => T.tf.avgPool(tx!, q.k, q.s, q.pad) : undefined,
  }, {
    ...base,
    op: "avgpool.backward",
    flops,
    bytes: F * (xN + yN),
    ours: () => [pool.avgPool2dBackward(g, dy, pp)],
    outElements: xN,
    tf: tfjs ? () => T.avgPoolGrad(tdy!, tx!, q.k, q.s, q.pad) : undefined,
  }];
}

function matmulCase(n: number): Case {
  const a = random(n * n), b = random(n * n);
  const ta = tfjs ? T.fromOurs(a, [n, n]) : null, tb = tfjs ? T.fromOurs(b, [n, n]) : null;
  cleanups.push(() => {
    g.pool.release(a);
    g.pool.release(b);
    ta?.dispose();
    tb?.dispose();
  });
  const p = { M: n, N: n, K: n };
  return {
    op: "matmul",
    shape: `${n}x${n}x${n}`,
    params: { kind: "matmul", M: n, N: n, K: n },
    models: [],
    count: 1,
    flops: 2 * n * n * n,
    bytes: F * 3 * n * n,
    ours: () => [matmul(g, a, b, p)],
    outElements: n * n,
    tf: tfjs ? () => T.tf.matMul(ta!, tb!) : undefined,
    gemm: { spec: matmulSpec(p), run: (config) => [matmul(g, a, b, p, config)] },
  };
}

// ---------------------------------------------------------------------------------------------
// Selection: each model's distinct shapes (evenly spread when limited), merged across models.

const KIND_OF: Record<Layer["op"]["kind"], string> = {
  conv: "conv",
  depthwise: "depthwise",
  bn: "bn",
  maxpool: "pool",
  avgpool: "pool",
  gap: "pool",
  linear: "",
};
const LIMITS: Record<string, number> = {
  conv: perModel,
  depthwise: Math.min(perModel, quick ? 2 : Infinity),
  bn: Math.min(perModel, quick ? 1 : Infinity),
  pool: Math.min(perModel, quick ? 1 : Infinity),
};
function spread<T>(items: T[], k: number): T[] {
  if (items.length <= k) return items;
  return Array.from(
    { length: k },
    (_, i) => items[Math.round(i * (items.length - 1) / (k - 1 || 1))],
  );
}
const selected = new Map<string, { layer: Layer; models: string[]; count: number }>();
// Round-robin over the models (each in network order), so a --budget-s cut-off leaves every
// model with its first layers measured.
const queues = models.map((m) => {
  const layers = modelLayers(m, batch, size);
  const picked: Layer[] = [];
  for (const kind of ["conv", "depthwise", "bn", "pool"]) {
    if (!wantedOps.has(kind)) continue;
    picked.push(...spread(layers.filter((l) => KIND_OF[l.op.kind] === kind), LIMITS[kind]));
  }
  const order = new Map(layers.map((l, i) => [l.key, i]));
  return { m, layers: picked.sort((a, b) => order.get(a.key)! - order.get(b.key)!) };
});
for (let i = 0; queues.some((q) => i < q.layers.length); i++) {
  for (const { m, layers } of queues) {
    const l = layers[i];
    if (!l) continue;
    const s = selected.get(l.key);
    if (s) {
      s.models.push(m);
      s.count += l.count;
    } else selected.set(l.key, { layer: l, models: [m], count: l.count });
  }
}

const cleanups: (() => void)[] = [];
const results: Result[] = [];

async function runCase(c: Case): Promise<Result> {
  const r: Result = {
    op: c.op,
    shape: c.shape,
    params: c.params ?? (c.layer ? { kind: c.layer.op.kind, ...c.layer.op.p } : {}),
    models: c.models,
    count: c.count,
    flops: c.flops,
    bytes: c.bytes,
    ours: null,
    tfjs: null,
  };
  try {
    if (c.gemm) {
      r.config = configName(chooseGemmConfig(g, c.gemm.spec.M, c.gemm.spec.N, c.gemm.spec.batch));
    }
    const times = await timeRecorded(g, () => {
      for (const b of c.ours()) g.pool.release(b);
    }, { iterations, warmup, timer });
    g.check();
    r.ours = timing(times, c.flops, c.bytes);
  } catch (e) {
    r.error = `ours: ${(e as Error).message}`;
  }
  if (tfjs && c.tf) {
    try {
      const times = await timeRecorded(g, () => {
        g.batcher.flush(); // our mark goes to the queue before tfjs's work
        const out = T.tf.tidy(c.tf!);
        tfjs.submit();
        T.tf.dispose(out);
      }, { iterations, warmup, timer });
      g.check();
      r.tfjs = timing(times, c.flops, c.bytes);
      if (!values["no-check"] && r.ours) r.relErr = await compare(c);
    } catch (e) {
      r.error = `${r.error ? r.error + "; " : ""}tfjs: ${(e as Error).message}`;
    }
  }
  if (values.tune && c.gemm) r.tune = await tune(c);
  return r;
}

/** Elements compared per output (a prefix: enough to catch layout or indexing mistakes). */
const CHECK_ELEMENTS = 1 << 20;

async function compare(c: Case): Promise<number> {
  const m = Math.min(c.outElements, CHECK_ELEMENTS);
  const outs = c.ours();
  const ours = new Float32Array(await g.read(outs[0], 4 * m));
  for (const b of outs) g.pool.release(b);
  const prefix = T.tf.tidy(() => {
    const t = c.tf!();
    const first = Array.isArray(t) ? t[0] : t;
    return T.tf.slice(T.tf.reshape(first, [-1]), 0, m);
  });
  const ref = await prefix.data() as Float32Array;
  prefix.dispose();
  let diff = 0, scale = 0;
  for (let i = 0; i < m; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / (scale || 1);
}

/** Tile configs worth trying on this adapter. */
function gemmCandidates(): Candidate<GemmConfig>[] {
  const list: GemmConfig[] = g.info.isFallback
    ? [
      GEMM_REGISTER,
      GEMM_REGISTER_SMALL,
      { variant: "register", BM: 32, BN: 32, BK: 2, TM: 4, TN: 4 },
      { variant: "register", BM: 64, BN: 64, BK: 2, TM: 8, TN: 8 },
      { variant: "register", BM: 64, BN: 32, BK: 4, TM: 8, TN: 4 },
      { variant: "register", BM: 64, BN: 32, BK: 1, TM: 8, TN: 4 },
      { variant: "register", BM: 32, BN: 64, BK: 2, TM: 4, TN: 8 },
      { variant: "register", BM: 128, BN: 32, BK: 2, TM: 8, TN: 4 },
      { variant: "register", BM: 64, BN: 16, BK: 2, TM: 8, TN: 2 },
      { variant: "register", BM: 16, BN: 16, BK: 2, TM: 2, TN: 2 },
    ]
    : [
      GEMM_SHARED_LARGE,
      GEMM_SHARED_MEDIUM,
      GEMM_SHARED_SMALL,
      { variant: "shared", BM: 128, BN: 64, BK: 16, TM: 8, TN: 4 },
      { variant: "shared", BM: 64, BN: 128, BK: 16, TM: 4, TN: 8 },
      { variant: "shared", BM: 64, BN: 64, BK: 32, TM: 4, TN: 4 },
      { variant: "shared", BM: 128, BN: 128, BK: 8, TM: 8, TN: 8 },
    ];
  return list.map((config) => ({ name: configName(config), config }));
}

async function tune(c: Case): Promise<Result["tune"]> {
  const tuner = new Autotuner(g, { enabled: true, cachePath: null, iterations, warmup });
  const cands = gemmCandidates();
  const best = await tuner.choose(c.op, c.shape, cands, (config) => {
    for (const b of c.gemm!.run(config)) g.pool.release(b);
  }, cands[0].config);
  const ms = tuner.entry(c.op, c.shape)?.ms ?? {};
  const def = configName(chooseGemmConfig(g, c.gemm!.spec.M, c.gemm!.spec.N, c.gemm!.spec.batch));
  return {
    best: configName(best),
    bestMs: ms[configName(best)],
    defaultMs: ms[def] ?? NaN,
    ms,
  };
}

function fmt(v: number | undefined, digits = 2): string {
  return v === undefined || Number.isNaN(v) ? "-" : v.toFixed(digits);
}

function printRow(r: Result): void {
  const speed = r.ours && r.tfjs ? r.tfjs.ms / r.ours.ms : NaN;
  console.log(
    [
      r.op.padEnd(22),
      r.shape.padEnd(46),
      fmt(r.ours?.ms, 3).padStart(9),
      fmt(r.ours?.gflops, 1).padStart(8),
      fmt(r.ours?.gbps, 1).padStart(7),
      fmt(r.tfjs?.ms, 3).padStart(9),
      fmt(r.tfjs?.gflops, 1).padStart(8),
      fmt(speed, 2).padStart(6),
      r.relErr === undefined ? "" : r.relErr.toExponential(1),
      r.tune ? ` tune: ${r.tune.best} ${fmt(r.tune.bestMs, 3)} vs ${fmt(r.tune.defaultMs, 3)}` : "",
      r.error ? ` ERROR ${r.error}` : "",
    ].join(" "),
  );
}

console.log(
  [
    "op".padEnd(22),
    "shape".padEnd(46),
    "ours ms".padStart(9),
    "GFLOP/s".padStart(8),
    "GB/s".padStart(7),
    "tfjs ms".padStart(9),
    "GFLOP/s".padStart(8),
    "x tfjs".padStart(6),
    "rel err",
  ].join(" "),
);

const t0 = performance.now();
const date = new Date().toISOString();
const out = values.out ??
  new URL(
    `./results/${adapterSlug(g.info.name)}-${date.slice(0, 10)}${quick ? "-quick" : ""}.json`,
    import.meta.url,
  ).pathname;
await Deno.mkdir(out.slice(0, out.lastIndexOf("/")) || ".", { recursive: true });
if (wantedOps.has("matmul")) {
  for (const n of matmulSizes) {
    const r = await runCase(matmulCase(n));
    printRow(r);
    results.push(r);
    cleanups.splice(0).forEach((f) => f());
  }
}
let skipped = 0;
await writeReport();
for (const { layer, models: ms, count } of selected.values()) {
  if ((performance.now() - t0) / 1000 > budgetS) {
    skipped++;
    continue;
  }
  let cases: Case[] = [];
  try {
    const op = layer.op;
    switch (op.kind) {
      case "conv":
        cases = convCases(layer, op.p, ms);
        break;
      case "depthwise":
        cases = depthwiseCases(layer, op.p, ms);
        break;
      case "bn":
        cases = bnCases(layer, op.p, ms);
        break;
      default:
        cases = poolCases(layer, ms);
    }
  } catch (e) {
    console.log(`${layer.key}: setup failed: ${(e as Error).message}`);
  }
  for (const c of cases) {
    c.count = count;
    const r = await runCase(c);
    printRow(r);
    results.push(r);
  }
  cleanups.splice(0).forEach((f) => f());
  await writeReport();
}
/** Per model: sum over its measured layer shapes of count * ms, ours and tfjs. */
function perModelTotals(): Record<string, { ours: number; tfjs: number; layers: number }> {
  const out: Record<string, { ours: number; tfjs: number; layers: number }> = {};
  for (const r of results) {
    for (const m of r.models) {
      const e = out[m] ??= { ours: 0, tfjs: 0, layers: 0 };
      const k = r.count / r.models.length; // merged shapes: split the count evenly (estimate)
      if (r.ours) e.ours += k * r.ours.ms;
      if (r.tfjs) e.tfjs += k * r.tfjs.ms;
      e.layers++;
    }
  }
  return out;
}

/** Writes the JSON (after every layer shape too, so a run cut short keeps its results). */
async function writeReport(): Promise<number> {
  const seconds = (performance.now() - t0) / 1000;
  const report = {
    kind: "kernels",
    adapter: g.info.name,
    info: g.info,
    date,
    deno: Deno.version.deno,
    quick,
    batch,
    size,
    iterations,
    warmup,
    timer: timer.mode,
    tfjs: tfjs ? { ok: true } : { ok: false, error: (tfr as { error: string }).error },
    seconds,
    layerShapes: selected.size,
    skippedForBudget: skipped,
    perModelMs: perModelTotals(),
    results,
  };
  await Deno.writeTextFile(out, JSON.stringify(report, null, 1) + "\n");
  return seconds;
}
const seconds = await writeReport();
const perModelMs = perModelTotals();
console.log(
  `\n${results.length} cases in ${seconds.toFixed(1)} s` +
    (skipped ? ` (${skipped} of ${selected.size} layer shapes skipped: --budget-s)` : "") +
    `; wrote ${out}`,
);
for (const [m, e] of Object.entries(perModelMs)) {
  console.log(
    `${m}: measured layer shapes sum to ${e.ours.toFixed(2)} ms ours, ${
      e.tfjs.toFixed(2)
    } ms tfjs (count-weighted, ${e.layers} cases)`,
  );
}
timer.dispose();
