/**
 * The study: train each model on the same split, keep its best epoch (validation balanced
 * accuracy), evaluate that checkpoint on the test split, and write the comparison.
 *
 * Output folder:
 *   run.json                 the resolved options (what `--resume` continues)
 *   split.json               the split manifest (all images; `--limit` subsets it per split)
 *   <model>/last.safetensors weights + optimizer + progress, every epoch and every K steps
 *   <model>/best.safetensors weights of the best epoch so far
 *   <model>/result.json      the model's ModelResults once it is done
 *   metrics.json             StudyResults with every epoch of every model
 *   comparison.md/.csv       the comparison table; report.html + charts/ (writeReport)
 */
import { join } from "node:path";
import { gpu, initGpu } from "../../kernels/runtime/gpu.ts";
import { UserError } from "../../core/errors.ts";
import { CLASSES, NUM_CLASSES } from "../../core/data/classes.ts";
import { openHam10000, type Sample, selectSamples } from "../../core/data/ham10000.ts";
import { ImageCache } from "../../core/data/image_cache.ts";
import { Loader } from "../../core/data/loader.ts";
import { classWeights } from "../../core/data/balance.ts";
import {
  loadManifest,
  makeSplit,
  saveManifest,
  type SplitManifest,
} from "../../core/data/split.ts";
import { evaluateClassifier } from "../../core/metrics/evaluate.ts";
import { softmax } from "../../core/metrics/softmax.ts";
import { crossEntropyFromLogits } from "../../core/metrics/softmax.ts";
import {
  type EpochRecord,
  epochValidationFields,
  type ModelResults,
  type StudyResults,
} from "../../core/metrics/run_results.ts";
import { comparisonTable } from "../../core/metrics/comparison_table.ts";
import { loadWeightsFile } from "../../core/io/load.ts";
import { downloadWeights } from "../../core/io/download.ts";
import { loadStateDict } from "../../models/load_weights.ts";
import { writeReport, writeTextAtomic } from "../report/write_report.ts";
import { loadTfSlimMobileNetV2 } from "../../models/tfslim_mobilenet_v2.ts";
import {
  checkpointInput,
  type CheckpointMeta,
  exportWeights,
  IMAGENET_INPUT,
  loadCheckpointWeights,
  moduleCounters,
  readCheckpoint,
  restoreTrainingState,
  RNG_SCHEME,
  saveCheckpoint,
  savedEpochProgress,
  schedulerMeta,
  TFSLIM_INPUT,
  TRAIN_PREFIX,
} from "./checkpoint.ts";
import { buildModel, minInputSize, type TrainableModel, weightsUrl } from "./models.ts";
import { resolvePretrainedFlag, tfSlimDir, type TrainOptions } from "./options.ts";
import { describeRun } from "./profile.ts";
import { consoleSink, formatDuration, Progress, type ProgressSink } from "./progress.ts";
import { stratifiedSubset } from "./subset.ts";
import { assertFiniteLogits, EpochAccumulator, Trainer } from "./trainer.ts";
import { explainFailure } from "./failure.ts";
import { exists } from "../../core/io/exists.ts";

export const CLASS_NAMES: string[] = [...CLASSES];

/** Cache size for a network input of `size` px: the eval resize side, HAM10000's 4:3 kept. */
export function cacheShape(size: number): { height: number; width: number } {
  const height = Math.floor((size * 256) / 224);
  return { height, width: Math.round((height * 4) / 3) };
}

export interface DataSets {
  split: SplitManifest;
  train: Sample[];
  val: Sample[];
  test: Sample[];
}

/** The three sample sets of `split`, each a stratified subset when `limit` is set. */
export function splitSets(
  samples: readonly Sample[],
  split: SplitManifest,
  limit: number,
  seed: number,
): DataSets {
  const pick = (ids: string[], n: number) => {
    const s = selectSamples(samples, ids);
    return limit > 0 ? stratifiedSubset(s, Math.max(1, n), seed) : s;
  };
  const nVal = Math.round(limit * 0.1), nTest = Math.round(limit * 0.1);
  return {
    split,
    train: pick(split.train, limit - nVal - nTest),
    val: pick(split.val, nVal),
    test: pick(split.test, nTest),
  };
}

export interface StudyIo {
  sink?: ProgressSink;
  /** Environment for HAM10000_DIR (tests). */
  env?: { get(key: string): string | undefined };
}

/** Runs (or, with `resumed`, continues) the study and writes every output. */
export async function runStudy(
  o: TrainOptions,
  io: StudyIo = {},
  resumed = false,
): Promise<StudyResults> {
  const sink = io.sink ?? consoleSink();
  const g = await initGpu();
  for (const line of describeRun(o, g.info.name, g.info.isFallback)) sink.line(line);
  for (const m of o.models) {
    if (o.imageSize < minInputSize(m)) {
      throw new UserError(`--image-size ${o.imageSize}: ${m} needs at least ${minInputSize(m)} px`);
    }
  }
  const pretrained = await resolvePretrained(o.pretrained, o.models, (l) => sink.line(l));
  const ham = await openHam10000({ data: o.data, env: io.env });
  await Deno.mkdir(o.out, { recursive: true });
  const splitPath = join(o.out, "split.json");
  let split: SplitManifest;
  if (resumed) split = await loadManifest(splitPath);
  else {
    split = makeSplit(ham.rows, o.split, o.seed);
    await saveManifest(splitPath, split);
    await writeTextAtomic(join(o.out, "run.json"), JSON.stringify(o, null, 1) + "\n");
  }
  const sets = splitSets(ham.samples, split, o.limit, o.seed);
  if (!sets.train.length || !sets.val.length || !sets.test.length) {
    throw new UserError(
      `the split left an empty set (train ${sets.train.length}, val ${sets.val.length}, test ` +
        `${sets.test.length}); use a larger --limit or more data`,
    );
  }
  sink.line(
    `data ${ham.dataDir.dir}: train ${sets.train.length}, val ${sets.val.length}, test ${sets.test.length} images`,
  );
  const cache = new ImageCache({ ...cacheShape(o.imageSize), dir: o.cacheDir });
  const results: ModelResults[] = [];
  const timings: string[] = [];
  for (const name of o.models) {
    const t0 = performance.now();
    results.push(await trainModel(name, o, sets, cache, pretrained, sink));
    const secs = (performance.now() - t0) / 1000;
    timings.push(`${name} ${formatDuration(secs)} (${secs.toFixed(1)} s)`);
    sink.line(`${name}: done in ${secs.toFixed(1)} s`);
  }
  const study: StudyResults = {
    adapter: g.info.name,
    isFallback: g.info.isFallback,
    date: new Date().toISOString(),
    profile: o.profile,
    splitMode: split.mode,
    models: results,
  };
  await writeTextAtomic(join(o.out, "metrics.json"), JSON.stringify(study, null, 1) + "\n");
  const table = comparisonTable(study);
  await writeTextAtomic(join(o.out, "comparison.md"), table.markdown);
  await writeTextAtomic(join(o.out, "comparison.csv"), table.csv);
  await writeReport(o.out, study);
  sink.line("");
  sink.line(table.markdown.trimEnd());
  sink.line(`time per model: ${timings.join(", ")}`);
  sink.line(`wrote ${o.out}/metrics.json, comparison.md, comparison.csv, report.html`);
  return study;
}

/**
 * Where each model's starting weights come from: nothing, a weights file per model, or the
 * TF-slim folder (mobilenet_v2 only; TF padding and [-1, 1] inputs).
 */
export type Pretrained =
  | { kind: "none" }
  | { kind: "files"; paths: Record<string, string> }
  | { kind: "tfslim"; dir: string };

/**
 * Resolves `--pretrained`: "none"; "torchvision" (each model's ImageNet .pth, downloaded once
 * into the weights cache and verified against the hash in its name; offline, a cached file is
 * used or the error says how to pass the file); "tfslim[:DIR]" (the TF-slim folder, for
 * mobilenet_v2 only); or one FILE for every model.
 */
export async function resolvePretrained(
  p: string,
  models: readonly string[],
  log: (line: string) => void = () => {},
): Promise<Pretrained> {
  if (p === "none") return { kind: "none" };
  const dir = tfSlimDir(resolvePretrainedFlag(p, models));
  if (dir !== undefined) {
    try {
      await Deno.stat(join(dir, "mapping.json"));
    } catch {
      throw new UserError(
        `--pretrained ${p}: no mapping.json in ${dir}; pass tfslim:DIR with the folder of the ` +
          `TF-slim .npy files and mapping.json`,
      );
    }
    log(`mobilenet_v2: TF-slim ImageNet weights ${dir} (TF padding, [-1, 1] inputs)`);
    return { kind: "tfslim", dir };
  }
  const paths: Record<string, string> = {};
  if (p === "torchvision") {
    for (const m of models) {
      const url = weightsUrl(m);
      if (!url) {
        throw new UserError(`--pretrained torchvision: ${m} has no torchvision weights; use none`);
      }
      let last = 0;
      paths[m] = await downloadWeights(url, {
        onProgress: (got, total) => {
          if (total && got - last >= total / 4) {
            last = got;
            log(`downloading ${url}: ${Math.round((100 * got) / total)}%`);
          }
        },
      });
      log(`${m}: ImageNet weights ${paths[m]}`);
    }
    return { kind: "files", paths };
  }
  try {
    await Deno.stat(p);
  } catch {
    throw new UserError(
      `--pretrained ${p}: no such file; pass none, torchvision or a weights file`,
    );
  }
  for (const m of models) paths[m] = p;
  return { kind: "files", paths };
}

function metaFor(
  name: string,
  o: TrainOptions,
  trainer: Trainer,
  state: {
    epoch: number;
    step: number;
    globalStep: number;
    best: CheckpointMeta["best"];
    history: EpochRecord[];
    stepImages?: number[];
    epochSeconds?: number;
  },
): CheckpointMeta {
  return {
    format: "dermagpu-checkpoint",
    version: 1,
    model: name,
    numClasses: NUM_CLASSES,
    classNames: CLASS_NAMES,
    imageSize: o.imageSize,
    config: { ...o },
    epoch: state.epoch,
    step: state.step,
    globalStep: state.globalStep,
    optimizer: { steps: trainer.optimizer.steps, lr: trainer.optimizer.lr },
    scheduler: schedulerMeta(trainer),
    stepImages: state.stepImages ?? [],
    counters: moduleCounters(trainer.model),
    rng: { seed: o.seed, epoch: state.epoch, step: state.step, scheme: RNG_SCHEME },
    best: state.best,
    history: state.history,
    epochSeconds: state.epochSeconds,
    normalize: trainer.normalize === "minus1to1" ? "minus1to1" : "imagenet",
    tfPadding: (trainer.model as { tfPadding?: boolean }).tfPadding === true,
  };
}

/** Trains one model (continuing from its last checkpoint if there is one) and tests it. */
export async function trainModel(
  name: string,
  o: TrainOptions,
  sets: DataSets,
  cache: ImageCache,
  pretrained: Pretrained,
  sink: ProgressSink,
): Promise<ModelResults> {
  const dir = join(o.out, name);
  await Deno.mkdir(dir, { recursive: true });
  const resultPath = join(dir, "result.json");
  if (await exists(resultPath)) {
    sink.line(`${name}: already finished (${resultPath})`);
    return JSON.parse(await Deno.readTextFile(resultPath)) as ModelResults;
  }
  const lastPath = join(dir, "last.safetensors"), bestPath = join(dir, "best.safetensors");
  const ckpt = (await exists(lastPath)) ? await readCheckpoint(lastPath) : null;
  // A resumed model is rebuilt as its checkpoint says; a fresh one as --pretrained needs.
  const input = ckpt
    ? checkpointInput(ckpt.meta, lastPath)
    : pretrained.kind === "tfslim"
    ? TFSLIM_INPUT
    : IMAGENET_INPUT;
  let model: TrainableModel;
  if (ckpt) {
    model = buildModel(name, NUM_CLASSES, o.seed, { tfPadding: input.tfPadding });
    loadCheckpointWeights(model, ckpt, lastPath);
  } else if (pretrained.kind === "tfslim") {
    model = await loadTfSlimMobileNetV2(pretrained.dir, { numClasses: NUM_CLASSES, seed: o.seed });
  } else {
    model = buildModel(name, NUM_CLASSES, o.seed);
    if (pretrained.kind === "files") await loadPretrained(model, pretrained.paths[name]);
  }
  const weights = o.classWeights
    ? Float32Array.from(classWeights(sets.train.map((s) => s.label), NUM_CLASSES))
    : null;
  const trainer = new Trainer(model, {
    numClasses: NUM_CLASSES,
    imageSize: o.imageSize,
    lr: o.lr,
    seed: o.seed,
    patience: o.patience,
    classWeights: weights,
    normalize: input.normalize,
    // TF padding means the TF-slim weights, whose BatchNorm is folded into the convs.
    freezeBatchNorm: input.tfPadding,
  });
  let epoch = 0, startStep = 0, globalStep = 0;
  let history: EpochRecord[] = [];
  let best: CheckpointMeta["best"] = null;
  let resumedSeconds = 0;
  if (ckpt) {
    restoreTrainingState(trainer, ckpt);
    ({ epoch, step: startStep, globalStep, history, best } = ckpt.meta);
    resumedSeconds = ckpt.meta.epochSeconds ?? 0;
    sink.line(`${name}: resuming at epoch ${epoch + 1}, batch ${startStep + 1} (${lastPath})`);
  }
  const steps = Math.ceil(sets.train.length / o.batchSize);
  const progress = new Progress(sink, o.logEvery);
  const stopped = () =>
    o.earlyStop > 0 && best !== null && history.length - best.epoch >= o.earlyStop;
  try {
    for (; epoch < o.epochs && !stopped(); epoch++, startStep = 0) {
      const t0 = performance.now();
      const order = trainer.epochOrder(sets.train, epoch);
      const acc = new EpochAccumulator(sets.train.length, steps, NUM_CLASSES);
      let seconds = 0;
      try {
        const saved = ckpt && startStep > 0 && epoch === ckpt.meta.epoch
          ? savedEpochProgress(ckpt)
          : null;
        if (saved) acc.restore(saved.logits, saved.losses, saved.stepImages);
        if (startStep > 0) seconds = resumedSeconds;
        const remaining = Array.from(order.subarray(startStep * o.batchSize), (i) => sets.train[i]);
        const loader = new Loader({
          samples: remaining,
          cache,
          batchSize: o.batchSize,
          order: "sequential",
        });
        const lrUsed = trainer.optimizer.lr;
        progress.start({ label: name, epoch: epoch + 1, epochs: o.epochs, steps, startStep });
        let s = startStep;
        const firstGlobal = globalStep - startStep;
        let lastLoss: number | undefined;
        for await (const batch of loader.epoch(0)) {
          trainer.step(batch, epoch, s, acc);
          s++;
          globalStep++;
          if (s % o.logEvery === 0 || s === steps) {
            const fresh = await acc.checkLosses(epoch + 1, firstGlobal);
            if (fresh.length) lastLoss = fresh.reduce((a, b) => a + b, 0) / fresh.length;
          }
          progress.update(s, batch.n, lastLoss);
          if (o.checkpointEvery > 0 && s % o.checkpointEvery === 0 && s < steps) {
            await acc.checkLosses(epoch + 1, firstGlobal);
            await saveCheckpoint(
              lastPath,
              model,
              metaFor(name, o, trainer, {
                epoch,
                step: s,
                globalStep,
                best,
                history,
                stepImages: acc.stepImages,
                epochSeconds: seconds + (performance.now() - t0) / 1000,
              }),
              { trainer, acc },
            );
          }
        }
        await acc.checkLosses(epoch + 1, firstGlobal);
        const trainLogits = await acc.readLogits();
        assertFiniteLogits(trainLogits, `training (epoch ${epoch + 1})`);
        const trainLabels = Int32Array.from(order, (i) => sets.train[i].label);
        const trainReport = evaluateClassifier(
          softmax(trainLogits, NUM_CLASSES),
          trainLabels,
          CLASS_NAMES,
          { loss: acc.meanLoss() },
        );
        const trainSeconds = (performance.now() - t0) / 1000;
        const imagesPerSecond = (sets.train.length - startStep * o.batchSize) / trainSeconds;
        const valLogits = await trainer.predict(sets.val, cache, {
          batchSize: o.batchSize,
          onBatch: livePass(
            sink,
            `${name} validation`,
            epoch + 1,
            o.epochs,
            sets.val.length,
            o.batchSize,
          ),
        });
        assertFiniteLogits(valLogits, `validation (epoch ${epoch + 1})`);
        const valLabels = Int32Array.from(sets.val, (x) => x.label);
        const valReport = evaluateClassifier(
          softmax(valLogits, NUM_CLASSES),
          valLabels,
          CLASS_NAMES,
          {
            loss: crossEntropyFromLogits(valLogits, valLabels, NUM_CLASSES),
          },
        );
        seconds += (performance.now() - t0) / 1000;
        const record: EpochRecord = {
          epoch: epoch + 1,
          lr: lrUsed,
          trainLoss: trainReport.loss,
          trainAccuracy: trainReport.accuracy,
          trainPrecision: trainReport.weightedPrecision,
          trainRecall: trainReport.weightedRecall,
          ...epochValidationFields(valReport),
          seconds,
          imagesPerSecond,
        };
        history = [...history, record];
        const reduced = trainer.scheduler.step(record.valLoss);
        const mel = record.valPerClassRecall.mel;
        sink.line(
          `${name} epoch ${epoch + 1}/${o.epochs}: train loss ${record.trainLoss.toFixed(4)} acc ${
            pct(record.trainAccuracy)
          } | val loss ${record.valLoss.toFixed(4)} acc ${pct(record.valAccuracy)} bal.acc ${
            pct(record.valBalancedAccuracy)
          } macro-F1 ${record.valMacroF1.toFixed(3)} mel recall ${
            mel === null || mel === undefined ? "—" : pct(mel)
          } | ${imagesPerSecond.toFixed(1)} img/s, ${seconds.toFixed(1)} s${
            reduced ? `; lr -> ${trainer.optimizer.lr}` : ""
          }`,
        );
        const meta = (e: number) =>
          metaFor(name, o, trainer, { epoch: e, step: 0, globalStep, best, history });
        const weights = await exportWeights(model);
        if (best === null || record.valBalancedAccuracy > best.balancedAccuracy) {
          best = { epoch: epoch + 1, balancedAccuracy: record.valBalancedAccuracy };
          await saveCheckpoint(bestPath, model, meta(epoch + 1), undefined, weights);
        }
        await saveCheckpoint(lastPath, model, meta(epoch + 1), { trainer }, weights);
      } finally {
        acc.dispose();
      }
    }
    if (stopped()) {
      sink.line(`${name}: early stop (no better val balanced accuracy for ${o.earlyStop} epochs)`);
    }
    if (!best) throw new UserError(`${name}: no epoch finished; nothing to test`);
    // The model holds the weights of the last finished epoch; load the best one if it differs.
    if (best.epoch !== history.length) {
      loadCheckpointWeights(model, await readCheckpoint(bestPath), bestPath);
    }
    const testLogits = await trainer.predict(sets.test, cache, {
      batchSize: o.batchSize,
      onBatch: livePass(sink, `${name} test`, best.epoch, o.epochs, sets.test.length, o.batchSize),
    });
    assertFiniteLogits(testLogits, "test");
    const testLabels = Int32Array.from(sets.test, (x) => x.label);
    const test = evaluateClassifier(softmax(testLogits, NUM_CLASSES), testLabels, CLASS_NAMES, {
      loss: crossEntropyFromLogits(testLogits, testLabels, NUM_CLASSES),
    });
    const result: ModelResults = {
      config: {
        model: name,
        epochs: history.length,
        batchSize: o.batchSize,
        lr: o.lr,
        imageSize: o.imageSize,
        split: o.split,
        seed: o.seed,
        pretrained: pretrained.kind !== "none",
        trainImages: sets.train.length,
        valImages: sets.val.length,
        testImages: sets.test.length,
      },
      epochs: history,
      bestEpoch: best.epoch,
      test,
    };
    const mel = test.perClass.find((k) => k.name === "mel")?.recall;
    sink.line(
      `${name} test (best epoch ${best.epoch}): acc ${pct(test.accuracy)} bal.acc ${
        pct(test.balancedAccuracy)
      } macro-F1 ${test.macroF1.toFixed(3)} mel recall ${mel == null ? "—" : pct(mel)} AUC ${
        test.macroAuc?.toFixed(3) ?? "—"
      }`,
    );
    await writeTextAtomic(resultPath, JSON.stringify(result) + "\n");
    return result;
  } catch (e) {
    throw explainFailure(e, name, (await exists(lastPath)) ? lastPath : undefined);
  } finally {
    trainer.dispose();
    model.dispose();
    // The next model has other shapes: free this one's pooled buffers.
    gpu().trim();
    gpu().check();
  }
}

/** On a terminal, a live bar for an evaluation pass; nothing in plain logs. */
function livePass(
  sink: ProgressSink,
  label: string,
  epoch: number,
  epochs: number,
  images: number,
  batchSize: number,
): ((step: number, n: number) => void) | undefined {
  if (!sink.status) return undefined;
  const p = new Progress({ line: () => {}, status: sink.status }, 1);
  p.start({ label, epoch, epochs, steps: Math.ceil(images / batchSize) });
  return (step, n) => p.update(step, n);
}

function pct(v: number): string {
  return `${(v * 100).toFixed(2)}%`;
}

/** Loads a weights file into `model`, leaving its head alone (ImageNet or other-class heads). */
export async function loadPretrained(model: TrainableModel, path: string): Promise<void> {
  const sd = await loadWeightsFile(path);
  for (const k of [...sd.keys()]) if (k.startsWith(TRAIN_PREFIX)) sd.delete(k);
  loadStateDict(model, sd, { strict: true, skipHead: true, file: path });
}
