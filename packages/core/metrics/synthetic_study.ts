/**
 * A synthetic `StudyResults` for tests and demos of the report: predictions are drawn from a
 * seeded RNG and every number goes through the real metric functions.
 */
import { confusionMatrixFromPredictions } from "./confusion.ts";
import { accuracy, weightedPrecision, weightedRecall } from "./classification.ts";
import { evaluateClassifier, HAM10000_CLASSES } from "./evaluate.ts";
import type { EpochRecord, ModelResults, StudyResults } from "./run_results.ts";
import { epochValidationFields } from "./run_results.ts";
import { argmaxRows } from "./confusion.ts";
import { crossEntropyFromLogits, softmax } from "./softmax.ts";

/** Deterministic uniform [0, 1) generator (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** HAM10000 class frequencies (images per class, in HAM10000_CLASSES order). */
const HAM_COUNTS = [327, 514, 1099, 115, 1113, 6705, 142];

/**
 * `n` labels drawn from the HAM10000 class prior, and logits that favour the true class by
 * `signal` (plus standard-normal-ish noise), so accuracy grows with `signal`.
 */
export function syntheticPredictions(
  rand: () => number,
  n: number,
  signal: number,
): { logits: Float64Array; labels: Int32Array } {
  const c = HAM_COUNTS.length;
  const total = HAM_COUNTS.reduce((a, b) => a + b, 0);
  const labels = new Int32Array(n);
  const logits = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    let u = rand() * total;
    let y = 0;
    while (u >= HAM_COUNTS[y]) u -= HAM_COUNTS[y++];
    labels[i] = y;
    for (let k = 0; k < c; k++) {
      // Sum of 3 uniforms, centred: roughly normal with variance 1/4; nv gets a prior boost.
      const noise = (rand() + rand() + rand() - 1.5) * 1.5;
      logits[i * c + k] = noise + (k === y ? signal : 0) + (k === 5 ? 0.8 : 0);
    }
  }
  return { logits, labels };
}

/** A study of `models.length` models trained for `epochs` epochs, all numbers synthetic. */
export function syntheticStudy(
  seed: number,
  models: string[] = ["resnet18", "mobilenet_v2"],
  epochs = 3,
  samples = 300,
): StudyResults {
  const rand = mulberry32(seed);
  const names = [...HAM10000_CLASSES];
  const c = names.length;
  const results: ModelResults[] = models.map((model, mi) => {
    const history: EpochRecord[] = [];
    for (let e = 1; e <= epochs; e++) {
      const signal = 0.4 + 0.35 * e + 0.2 * mi;
      const train = syntheticPredictions(rand, samples, signal + 0.3);
      const trainCm = confusionMatrixFromPredictions(
        argmaxRows(train.logits, c),
        train.labels,
        c,
      );
      const val = syntheticPredictions(rand, samples, signal);
      const valReport = evaluateClassifier(softmax(val.logits, c), val.labels, names, {
        loss: crossEntropyFromLogits(val.logits, val.labels, c),
      });
      history.push({
        epoch: e,
        lr: 1e-3 * 0.5 ** (e - 1),
        trainLoss: crossEntropyFromLogits(train.logits, train.labels, c),
        trainAccuracy: accuracy(trainCm),
        trainPrecision: weightedPrecision(trainCm),
        trainRecall: weightedRecall(trainCm),
        ...epochValidationFields(valReport),
        seconds: 10 + 5 * rand(),
        imagesPerSecond: 500 + 100 * rand(),
      });
    }
    const best = history.reduce((a, b) => (b.valLoss < a.valLoss ? b : a));
    const test = syntheticPredictions(rand, samples, 0.4 + 0.35 * best.epoch + 0.2 * mi);
    return {
      config: {
        model,
        epochs,
        batchSize: 32,
        lr: 1e-3,
        imageSize: 224,
        split: "random",
        seed,
        pretrained: true,
        trainImages: samples,
        valImages: samples,
        testImages: samples,
      },
      epochs: history,
      bestEpoch: best.epoch,
      test: evaluateClassifier(softmax(test.logits, c), test.labels, names, {
        loss: crossEntropyFromLogits(test.logits, test.labels, c),
      }),
    };
  });
  return {
    adapter: "synthetic (no GPU)",
    isFallback: true,
    date: new Date(Date.UTC(2025, 0, 1)).toISOString(),
    profile: "quick",
    splitMode: "random",
    models: results,
  };
}
