/**
 * Training throughput: images/s of full training steps (forward, cross-entropy, backward, Adam)
 * for each model, with the GPU time split into forward / backward / optimizer by timestamp
 * marks between the phases (runtime/timer.ts), and the peak bytes of pooled GPU buffers in use
 * (`g.pool.peakBytesInUse`: activations, gradients, parameters and Adam state).
 *
 *   deno task bench:train [--quick] [--models resnet18,...] [--configs 224x64,64x256]
 *                         [--steps 5] [--warmup 2] [--wall-clock] [--out FILE]
 *
 * --configs: SIZExBATCH pairs (default 224 px batch 64 and 64 px batch 256). --quick: 32 px
 * batch 4, 2 timed steps after 1 warm-up (llvmpipe). Inputs are synthetic (random NHWC
 * images, random labels), so only the GPU work is measured, not the data pipeline
 * (bench:loader measures that). images/s is wall-clock over the timed steps, after a sync;
 * gpuImagesPerSec uses the summed timestamp regions. Without timestamps the split is measured
 * by differences of synced forward-only, forward+backward and full steps (--wall-clock forces
 * this fallback).
 * Writes benches/results/train-<adapter-slug>-<date>[-quick].json unless --out is given.
 */
import { parseArgs } from "node:util";
import { initGpu } from "../packages/kernels/runtime/gpu.ts";
import { gridFor } from "../packages/kernels/runtime/grid.ts";
import { GpuTimer, totals } from "../packages/kernels/runtime/timer.ts";
import { adapterSlug } from "../packages/kernels/runtime/autotune.ts";
import { fromBuffer, tensor } from "../packages/core/tensor.ts";
import { tidy } from "../packages/core/scope.ts";
import { backward } from "../packages/core/autograd.ts";
import { crossEntropy } from "../packages/core/ops/softmax.ts";
import { Adam } from "../packages/core/optim/adam.ts";
import { createModel, MODEL_NAMES } from "../packages/models/registry.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    models: { type: "string" },
    configs: { type: "string" },
    steps: { type: "string" },
    warmup: { type: "string" },
    out: { type: "string" },
    "wall-clock": { type: "boolean", default: false },
  },
});
const quick = values.quick;
const configs = (values.configs ?? (quick ? "32x4" : "224x64,64x256")).split(",").map((s) => {
  const [size, batch] = s.split("x").map(Number);
  if (!(size > 0 && batch > 0)) throw new Error(`bad config '${s}': use SIZExBATCH`);
  return { size, batch };
});
const steps = Number(values.steps ?? (quick ? 2 : 5));
const warmup = Number(values.warmup ?? (quick ? 1 : 2));
const models = values.models?.split(",") ?? [...MODEL_NAMES];
const CLASSES = 7;

const g = await initGpu();
const timer = new GpuTimer(g, { timestamps: !values["wall-clock"] });
console.log(
  `train bench on ${g.info.name} (timer: ${timer.mode}); ${steps} steps after ${warmup} warm-up`,
);

function randomImages(n: number, seed: number): GPUBuffer {
  const b = g.pool.acquire(4 * n);
  const grid = gridFor(n, 256);
  g.run(
    `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  var h = i * 747796405u + ${(seed * 2891336453) >>> 0}u;
  h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
  h = (h >> 22u) ^ h;
  y[i] = 2.0 * (f32(h >> 8u) / 8388608.0 - 1.0);
}`,
    [b],
    grid.workgroups,
  );
  return b;
}

export interface TrainResult {
  model: string;
  size: number;
  batch: number;
  steps: number;
  imagesPerSec?: number;
  gpuImagesPerSec?: number;
  /** Per step, ms. */
  stepMs?: number;
  forwardMs?: number;
  backwardMs?: number;
  optimizerMs?: number;
  peakBytes?: number;
  poolBytes?: number;
  dispatchesPerStep?: number;
  params?: number;
  loss?: number;
  error?: string;
}

async function bench(name: string, size: number, batch: number): Promise<TrainResult> {
  const r: TrainResult = { model: name, size, batch, steps };
  g.pool.trim();
  g.pool.peakBytesInUse = g.pool.bytesInUse;
  const model = createModel(name, { numClasses: CLASSES, seed: 0 });
  model.train();
  const params = model.parameters();
  r.params = params.reduce((s, p) => s + p.size, 0);
  const opt = new Adam(params, { lr: 1e-4 });
  const x = fromBuffer(randomImages(batch * size * size * 3, 7), [batch, size, size, 3]).keep();
  const labels = tensor(Int32Array.from({ length: batch }, (_, i) => (i * 5 + 3) % CLASSES))
    .keep();
  const step = (phase: "forward" | "backward" | "all", mark: boolean) =>
    tidy(() => {
      const loss = crossEntropy(model.forward(x), labels);
      if (phase === "forward") return loss;
      if (mark) timer.mark("backward");
      backward(loss);
      if (phase === "backward") return loss;
      if (mark) timer.mark("optimizer");
      opt.step();
      opt.zeroGrad();
      return loss;
    });
  try {
    for (let i = 0; i < warmup; i++) step("all", false).dispose();
    await g.sync();
    const d0 = g.batcher.dispatches;
    const t0 = performance.now();
    let last = null;
    for (let i = 0; i < steps; i++) {
      timer.mark("forward");
      last?.dispose();
      last = step("all", timer.mode === "timestamp");
    }
    timer.mark("end");
    await g.sync();
    const wall = performance.now() - t0;
    r.dispatchesPerStep = (g.batcher.dispatches - d0) / steps;
    r.loss = await last!.item();
    last!.dispose();
    r.stepMs = wall / steps;
    r.imagesPerSec = batch * steps / (wall / 1000);
    const marks = await timer.read();
    if (timer.mode === "timestamp") {
      const t = totals(marks);
      r.forwardMs = (t.get("forward") ?? NaN) / 1e6 / steps;
      r.backwardMs = (t.get("backward") ?? NaN) / 1e6 / steps;
      r.optimizerMs = (t.get("optimizer") ?? NaN) / 1e6 / steps;
    } else {
      // Differences of synced runs: forward only, forward + backward, full step.
      const timeOf = async (phase: "forward" | "backward" | "all") => {
        const s = performance.now();
        for (let i = 0; i < steps; i++) step(phase, false).dispose();
        await g.sync();
        return (performance.now() - s) / steps;
      };
      const f = await timeOf("forward"), fb = await timeOf("backward"), all = await timeOf("all");
      r.forwardMs = f;
      r.backwardMs = fb - f;
      r.optimizerMs = all - fb;
    }
    const gpuMs = r.forwardMs + r.backwardMs + r.optimizerMs;
    r.gpuImagesPerSec = batch / (gpuMs / 1000);
    r.peakBytes = g.pool.peakBytesInUse;
    r.poolBytes = g.pool.bytesInUse + g.pool.bytesPooled;
  } catch (e) {
    r.error = (e as Error).message;
    timer.reset();
    try {
      await g.sync();
    } catch {
      // the error was already recorded
    }
  } finally {
    x.dispose();
    labels.dispose();
    opt.dispose();
    model.dispose();
    g.pool.trim();
  }
  return r;
}

const fmt = (v: number | undefined, d = 1) =>
  v === undefined || Number.isNaN(v) ? "-" : v.toFixed(d);
console.log(
  "model".padEnd(16) + "size batch".padStart(11) + "img/s".padStart(9) + "gpu img/s".padStart(10) +
    "step ms".padStart(10) + "fwd ms".padStart(9) + "bwd ms".padStart(9) + "opt ms".padStart(8) +
    "peak MiB".padStart(10) + "disp/step".padStart(10),
);
const results: TrainResult[] = [];
const t0 = performance.now();
const date = new Date().toISOString();
const out = values.out ??
  new URL(
    `./results/train-${adapterSlug(g.info.name)}-${date.slice(0, 10)}${quick ? "-quick" : ""}.json`,
    import.meta.url,
  ).pathname;
await Deno.mkdir(out.slice(0, out.lastIndexOf("/")) || ".", { recursive: true });
/** Rewritten after every model, so a run cut short still leaves its results. */
async function writeReport(): Promise<number> {
  const seconds = (performance.now() - t0) / 1000;
  const report = {
    kind: "train",
    adapter: g.info.name,
    info: g.info,
    date,
    deno: Deno.version.deno,
    quick,
    steps,
    warmup,
    timer: timer.mode,
    seconds,
    results,
  };
  await Deno.writeTextFile(out, JSON.stringify(report, null, 1) + "\n");
  return seconds;
}
for (const { size, batch } of configs) {
  for (const m of models) {
    const r = await bench(m, size, batch);
    results.push(r);
    console.log(
      m.padEnd(16) + `${size} ${batch}`.padStart(11) + fmt(r.imagesPerSec).padStart(9) +
        fmt(r.gpuImagesPerSec).padStart(10) + fmt(r.stepMs).padStart(10) +
        fmt(r.forwardMs).padStart(9) + fmt(r.backwardMs).padStart(9) +
        fmt(r.optimizerMs, 2).padStart(8) +
        fmt(r.peakBytes === undefined ? undefined : r.peakBytes / 2 ** 20, 0).padStart(10) +
        fmt(r.dispatchesPerStep, 0).padStart(10) + (r.error ? `  ERROR ${r.error}` : ""),
    );
    await writeReport();
  }
}
console.log(`wrote ${out} (${(await writeReport()).toFixed(1)} s)`);
timer.dispose();
