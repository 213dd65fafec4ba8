/**
 * Linear probe: are the TF-slim ImageNet MobileNetV2 features useful for HAM10000? Extracts the
 * 1280-d pooled features of N real images with the pretrained weights and with random weights
 * (same architecture, TF padding, eval mode), then trains the same multinomial logistic
 * regression (CPU, f64, standardised features, L2, fixed full-batch iterations) on a
 * lesion-disjoint train part and reports accuracy and balanced accuracy on the held-out part.
 *
 *   npx -y deno@2.9.6 run -A benches/tfslim_probe.ts [--images 400] [--size 128]
 *       [--test-frac 0.3] [--seed 0] [--l2 0.01] [--iters 500] [--batch 16]
 *       [--data DIR] [--weights DIR] [--cache-dir DIR] [--symmetric-too]
 *
 * --symmetric-too adds a third run: the TF-slim weights in a model with torchvision's symmetric
 * padding (`tfPadding: false`), to see what the padding convention is worth.
 *
 * The random network keeps torchvision's initialisation with eval-mode (identity) BatchNorm, so
 * its activations shrink about 20x per stage (pooled features around 1e-10); ReLU6 on such
 * values is a plain ReLU and the convolutions have no bias, so the network is positively
 * homogeneous and standardising the features removes that scale.
 *
 * Images: a seeded lesion split of HAM10000 (train+val pool vs test pool, so no lesion is on
 * both sides), drawn class by class in turn so that rare classes are represented; resized to
 * cover S x S (centre crop), scaled to [-1, 1] as TF-slim expects.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { openHam10000 } from "../packages/core/data/ham10000.ts";
import { ImageCache } from "../packages/core/data/image_cache.ts";
import { lesionSplit } from "../packages/core/data/split.ts";
import { CLASSES, NUM_CLASSES } from "../packages/core/data/classes.ts";
import { mixSeed, Rng } from "../packages/core/data/rng.ts";
import type { MetadataRow } from "../packages/core/data/metadata.ts";
import { UserError } from "../packages/core/errors.ts";
import { gpu, initGpu } from "../packages/kernels/runtime/gpu.ts";
import { augmentBatch, evalParams } from "../packages/kernels/ops/augment.ts";
import { fromBuffer } from "../packages/core/tensor.ts";
import { tidy } from "../packages/core/scope.ts";
import { noGrad } from "../packages/core/autograd.ts";
import { type MobileNetV2, mobilenetV2 } from "../packages/models/mobilenet_v2.ts";
import {
  defaultTfSlimDir,
  loadTfSlimMobileNetV2,
  pooledFeatures,
  readTfSlimMapping,
  TFSLIM_NORMALIZE,
  tfSlimStateDict,
} from "../packages/models/tfslim_mobilenet_v2.ts";
import { loadWeightsFile } from "../packages/core/io/load.ts";
import { loadStateDict } from "../packages/models/load_weights.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    images: { type: "string", default: "400" },
    size: { type: "string", default: "128" },
    "test-frac": { type: "string", default: "0.3" },
    seed: { type: "string", default: "0" },
    l2: { type: "string", default: "0.01" },
    iters: { type: "string", default: "500" },
    batch: { type: "string", default: "16" },
    data: { type: "string" },
    weights: { type: "string" },
    "cache-dir": { type: "string" },
    "symmetric-too": { type: "boolean", default: false },
  },
});

function num(flag: string, v: string, ok: (x: number) => boolean): number {
  const x = Number(v);
  if (!ok(x)) throw new UserError(`benches/tfslim_probe.ts: bad --${flag} ${v}; see the usage`);
  return x;
}
const N = num("images", values.images, (x) => Number.isInteger(x) && x >= 20);
const S = num("size", values.size, (x) => Number.isInteger(x) && x >= 32);
const testFrac = num("test-frac", values["test-frac"], (x) => x > 0 && x < 1);
const seed = num("seed", values.seed, Number.isInteger);
const l2 = num("l2", values.l2, (x) => x >= 0);
const iters = num("iters", values.iters, (x) => Number.isInteger(x) && x >= 1);
const B = num("batch", values.batch, (x) => Number.isInteger(x) && x >= 1);
const data = values.data ?? Deno.env.get("HAM10000_DIR") ??
  fileURLToPath(new URL("../../shared/data/ham10000/", import.meta.url));
const weightsDir = values.weights ?? defaultTfSlimDir();

// ---- selection: lesion-disjoint pools, classes in turn ----
const ham = await openHam10000({ data });
const split = lesionSplit(ham.rows, seed);
const byId = new Map(ham.rows.map((r) => [r.imageId, r]));
function pick(ids: readonly string[], count: number, stream: number): MetadataRow[] {
  const perClass: MetadataRow[][] = Array.from({ length: NUM_CLASSES }, () => []);
  for (const id of ids) {
    const r = byId.get(id);
    if (r) perClass[r.label].push(r);
  }
  perClass.forEach((l, c) => new Rng(mixSeed(seed, stream, c)).shuffle(l));
  const out: MetadataRow[] = [];
  for (let round = 0; out.length < count; round++) {
    let any = false;
    for (const l of perClass) {
      if (round < l.length && out.length < count) {
        out.push(l[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}
const nTest = Math.round(N * testFrac);
const trainRows = pick([...split.train, ...split.val], N - nTest, 10);
const testRows = pick(split.test, nTest, 11);
const trainLesions = new Set(trainRows.map((r) => r.lesionId));
const shared = testRows.filter((r) => trainLesions.has(r.lesionId)).length;
if (shared !== 0) throw new Error(`${shared} test images share a lesion with train`);
const counts = (rows: MetadataRow[]) =>
  CLASSES.map((c, i) => `${c} ${rows.filter((r) => r.label === i).length}`).join(", ");
console.log(`HAM10000 at ${data}: ${ham.rows.length} images; lesion split seed ${seed}`);
console.log(`train ${trainRows.length} (${counts(trainRows)})`);
console.log(`test  ${testRows.length} (${counts(testRows)}); lesions shared with train: 0`);

// ---- images (S x S, cover) ----
let t0 = performance.now();
const cache = new ImageCache({ height: S, width: S, fit: "cover", dir: values["cache-dir"] });
const all = [...trainRows, ...testRows];
const pixels: Uint8Array[] = [];
for (const r of all) pixels.push(await cache.get(ham.images.paths.get(r.imageId)!));
console.log(
  `images: ${all.length} at ${S}x${S} in ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
    `(${cache.stats.decoded} decoded, ${cache.stats.hits} cached)`,
);

// ---- features ----
await initGpu();
async function extract(model: MobileNetV2): Promise<Float64Array[]> {
  const g = gpu(), out: Float64Array[] = [];
  for (let i = 0; i < pixels.length; i += B) {
    const chunk = pixels.slice(i, i + B), n = chunk.length;
    const u8 = new Uint8Array(n * S * S * 3);
    chunk.forEach((p, j) => u8.set(p, j * S * S * 3));
    const buf = g.upload(u8);
    const x = fromBuffer(
      augmentBatch(g, buf, {
        n,
        inH: S,
        inW: S,
        outH: S,
        outW: S,
        params: evalParams(n, S, S, S, S, S),
        normalize: TFSLIM_NORMALIZE,
      }),
      [n, S, S, 3],
    );
    const f = noGrad(() => tidy(() => pooledFeatures(model, x)));
    const v = await f.read();
    f.dispose();
    x.dispose();
    g.pool.release(buf);
    for (let j = 0; j < n; j++) out.push(Float64Array.from(v.subarray(j * 1280, (j + 1) * 1280)));
  }
  return out;
}

// ---- multinomial logistic regression (f64) ----
function standardise(train: Float64Array[], test: Float64Array[]): void {
  const D = train[0].length;
  for (let d = 0; d < D; d++) {
    let m = 0, s = 0;
    for (const x of train) m += x[d];
    m /= train.length;
    for (const x of train) s += (x[d] - m) ** 2;
    s = Math.sqrt(s / train.length);
    // No absolute floor: random weights give features around 1e-10 (see below).
    const inv = s > 0 ? 1 / s : 0;
    for (const x of [...train, ...test]) x[d] = (x[d] - m) * inv;
  }
}

/** Softmax regression, mean cross-entropy + l2/2 * |W|^2 (no penalty on biases), Nesterov GD. */
function fitLogistic(X: Float64Array[], y: number[], K: number) {
  const n = X.length, D = X[0].length;
  // Step 1/L with L = |X|_2^2 / (2n) + l2 (bound for softmax CE), |X|_2^2 by power iteration.
  let v: Float64Array = new Float64Array(D + 1).fill(1 / Math.sqrt(D + 1)), top = 0;
  for (let it = 0; it < 30; it++) {
    const u = new Float64Array(D + 1);
    for (const x of X) {
      let dot = v[D];
      for (let d = 0; d < D; d++) dot += x[d] * v[d];
      for (let d = 0; d < D; d++) u[d] += dot * x[d];
      u[D] += dot;
    }
    top = Math.hypot(...u);
    v = u.map((a) => a / top);
  }
  const lr = 1 / (top / (2 * n) + l2);
  const W = new Float64Array(K * (D + 1)); // row k: D weights then the bias
  let prev = W.slice(), look = W.slice();
  const p = new Float64Array(K);
  for (let it = 0; it < iters; it++) {
    const grad = new Float64Array(W.length);
    for (let i = 0; i < n; i++) {
      const x = X[i];
      let max = -Infinity;
      for (let k = 0; k < K; k++) {
        let z = look[k * (D + 1) + D];
        for (let d = 0; d < D; d++) z += look[k * (D + 1) + d] * x[d];
        p[k] = z;
        max = Math.max(max, z);
      }
      let sum = 0;
      for (let k = 0; k < K; k++) sum += p[k] = Math.exp(p[k] - max);
      for (let k = 0; k < K; k++) {
        const e = (p[k] / sum - (y[i] === k ? 1 : 0)) / n;
        const row = k * (D + 1);
        for (let d = 0; d < D; d++) grad[row + d] += e * x[d];
        grad[row + D] += e;
      }
    }
    const next = new Float64Array(W.length);
    for (let j = 0; j < W.length; j++) {
      const reg = j % (D + 1) === D ? 0 : l2 * look[j];
      next[j] = look[j] - lr * (grad[j] + reg);
    }
    const mom = it / (it + 3);
    look = next.map((w, j) => w + mom * (w - prev[j]));
    prev = next;
  }
  return (x: Float64Array): number => {
    let best = 0, bestZ = -Infinity;
    for (let k = 0; k < K; k++) {
      let z = prev[k * (D + 1) + D];
      for (let d = 0; d < D; d++) z += prev[k * (D + 1) + d] * x[d];
      if (z > bestZ) [best, bestZ] = [k, z];
    }
    return best;
  };
}

function scores(pred: number[], y: number[]) {
  const acc = pred.filter((p, i) => p === y[i]).length / y.length;
  const recalls: number[] = [];
  for (let c = 0; c < NUM_CLASSES; c++) {
    const idx = y.map((t, i) => t === c ? i : -1).filter((i) => i >= 0);
    if (idx.length > 0) recalls.push(idx.filter((i) => pred[i] === c).length / idx.length);
  }
  return { acc, bal: recalls.reduce((a, b) => a + b, 0) / recalls.length };
}

const yTrain = trainRows.map((r) => r.label), yTest = testRows.map((r) => r.label);
const results: Record<string, unknown> = {
  images: N,
  size: S,
  train: trainRows.length,
  test: testRows.length,
  seed,
  l2,
  iters,
};
const majority = Math.max(...CLASSES.map((_, c) => yTest.filter((t) => t === c).length));
results.majorityTestAcc = +(majority / yTest.length).toFixed(4);
/** The TF-slim weights in a torchvision-padded model (what ignoring TF's padding costs). */
async function symmetricPadded(): Promise<MobileNetV2> {
  const sd = tfSlimStateDict(
    await loadWeightsFile(weightsDir, { rawKeys: true }),
    await readTfSlimMapping(weightsDir),
    { dir: weightsDir },
  );
  const model = mobilenetV2({ numClasses: NUM_CLASSES, seed });
  loadStateDict(model, sd, { skipHead: true, normalize: false });
  return model.eval();
}

const kinds = values["symmetric-too"]
  ? ["tfslim", "random", "tfslim-sympad"]
  : ["tfslim", "random"];
for (const kind of kinds) {
  t0 = performance.now();
  const model = kind === "tfslim"
    ? await loadTfSlimMobileNetV2(weightsDir, { numClasses: NUM_CLASSES, seed })
    : kind === "random"
    ? mobilenetV2({ numClasses: NUM_CLASSES, seed, tfPadding: true }).eval()
    : await symmetricPadded();
  const feats = await extract(model);
  model.dispose();
  const featSec = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const Xtr = feats.slice(0, trainRows.length), Xte = feats.slice(trainRows.length);
  const active = Xtr[0].map((_, d) => Xtr.some((x) => x[d] !== Xtr[0][d]) ? 1 : 0)
    .reduce((a, b) => a + b, 0);
  standardise(Xtr, Xte);
  const predict = fitLogistic(Xtr, yTrain, NUM_CLASSES);
  const tr = scores(Xtr.map(predict), yTrain), te = scores(Xte.map(predict), yTest);
  const fitSec = (performance.now() - t0) / 1000;
  const r = {
    testAcc: +te.acc.toFixed(4),
    testBalancedAcc: +te.bal.toFixed(4),
    trainAcc: +tr.acc.toFixed(4),
    nonConstantFeatures: active,
    featureSeconds: +featSec.toFixed(1),
    fitSeconds: +fitSec.toFixed(1),
  };
  results[kind] = r;
  console.log(
    `${kind.padEnd(13)}: test acc ${(te.acc * 100).toFixed(1)}%, balanced acc ` +
      `${(te.bal * 100).toFixed(1)}% (train acc ${(tr.acc * 100).toFixed(1)}%); ` +
      `${active}/1280 non-constant features; features ${featSec.toFixed(1)} s, ` +
      `fit ${fitSec.toFixed(1)} s`,
  );
}
console.log(
  `chance: balanced acc ${(100 / NUM_CLASSES).toFixed(1)}%, majority-class acc ` +
    `${(results.majorityTestAcc as number * 100).toFixed(1)}%`,
);
console.log(JSON.stringify(results));
