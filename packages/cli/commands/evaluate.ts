/**
 * `evaluate --checkpoint FILE [--data DIR] [--split-file split.json] [--subset test|val|train]
 *  [--labels isic.csv [--images-dir DIR]] [--tta] [--out DIR] [--batch-size N] [--limit N]`:
 * every metric of a trained checkpoint on a labelled set, as `metrics.json` (StudyResults
 * holding this one evaluation as the model's test report, with the checkpoint's training
 * history), `evaluation.json` (the plain ClassificationReport and what was evaluated) and
 * `report.html`.
 *
 * The set: `--labels` (an ISIC 2018 Task 3 ground-truth CSV) wins; otherwise HAM10000 images,
 * restricted to `--subset` of `--split-file` (default: the split.json of the checkpoint's run
 * folder, if there is one; else every image). `--tta` averages the logits of the image and its
 * horizontal and vertical flips. The model is rebuilt and its inputs normalised as the
 * checkpoint's metadata says (`normalize`, `tfPadding`: TF-slim runs use [-1, 1] and TF padding).
 */
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { UserError } from "../../core/errors.ts";
import { openHam10000, type Sample, selectSamples } from "../../core/data/ham10000.ts";
import { ImageCache } from "../../core/data/image_cache.ts";
import { loadIsic } from "../../core/data/isic.ts";
import { loadManifest, SPLIT_NAMES, type SplitName } from "../../core/data/split.ts";
import { evaluateClassifier } from "../../core/metrics/evaluate.ts";
import { crossEntropyFromLogits, softmax } from "../../core/metrics/softmax.ts";
import type { StudyResults } from "../../core/metrics/run_results.ts";
import { writeReport, writeTextAtomic } from "../report/write_report.ts";
import { checkpointInput, loadCheckpointWeights, readCheckpoint } from "../train/checkpoint.ts";
import { buildModel } from "../train/models.ts";
import { cacheShape } from "../train/study.ts";
import { stratifiedSubset } from "../train/subset.ts";
import { predictLogits } from "../train/trainer.ts";
import { exists } from "../../core/io/exists.ts";

export const EVALUATE_USAGE =
  `usage: evaluate --checkpoint FILE [--data DIR] [--split-file split.json] [--subset test|val|train]
  [--labels isic.csv [--images-dir DIR]] [--tta] [--out DIR] [--batch-size N] [--limit N]
  [--cache-dir DIR]`;

function positive(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !(n >= 1)) {
    throw new UserError(`--${name} ${v}: expected an integer >= 1`);
  }
  return n;
}

export async function run(args: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        checkpoint: { type: "string" },
        data: { type: "string" },
        "split-file": { type: "string" },
        subset: { type: "string" },
        labels: { type: "string" },
        "images-dir": { type: "string" },
        tta: { type: "boolean" },
        out: { type: "string" },
        "batch-size": { type: "string" },
        limit: { type: "string" },
        "cache-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UserError(`${(e as Error).message}; see evaluate --help`);
  }
  if (values.help) {
    console.log(EVALUATE_USAGE);
    return;
  }
  const file = values.checkpoint;
  if (!file) {
    throw new UserError(
      `--checkpoint FILE is required (a best.safetensors written by train); see evaluate --help`,
    );
  }
  const subset = (values.subset ?? "test") as SplitName;
  if (!SPLIT_NAMES.includes(subset)) {
    throw new UserError(`--subset ${values.subset}: expected ${SPLIT_NAMES.join(", ")}`);
  }
  const batchSize = positive("batch-size", values["batch-size"], 32);
  const limit = values.limit === undefined ? 0 : positive("limit", values.limit, 1);
  const g = await initGpu();
  const ckpt = await readCheckpoint(file);
  const { meta } = ckpt;

  let samples: Sample[];
  let setName: string;
  if (values.labels) {
    const isic = await loadIsic(values.labels, { imagesDir: values["images-dir"] });
    samples = isic.samples;
    setName = values.labels;
  } else {
    const ham = await openHam10000({ data: values.data });
    const runSplit = join(dirname(dirname(file)), "split.json");
    const splitFile = values["split-file"] ?? ((await exists(runSplit)) ? runSplit : undefined);
    if (splitFile) {
      const split = await loadManifest(splitFile);
      samples = selectSamples(ham.samples, split[subset]);
      setName = `${subset} of ${splitFile}`;
    } else {
      samples = ham.samples;
      setName = `all of ${ham.dataDir.dir}`;
    }
  }
  if (limit > 0) samples = stratifiedSubset(samples, limit, 0);
  if (samples.length === 0) {
    throw new UserError(`${setName}: no labelled images to evaluate; check --data / --subset`);
  }
  const input = checkpointInput(meta, file);
  const model = buildModel(meta.model, meta.numClasses, 0, { tfPadding: input.tfPadding });
  loadCheckpointWeights(model, ckpt, file);
  console.log(
    `evaluating ${meta.model} (${file}, epoch ${meta.epoch}) on ${samples.length} images: ` +
      `${setName}${values.tta ? ", with flip TTA" : ""}`,
  );
  const cache = new ImageCache({ ...cacheShape(meta.imageSize), dir: values["cache-dir"] });
  const t0 = performance.now();
  const logits = await predictLogits(model, samples, cache, {
    batchSize,
    imageSize: meta.imageSize,
    numClasses: meta.numClasses,
    normalize: input.normalize,
    tta: values.tta,
  });
  const seconds = (performance.now() - t0) / 1000;
  const labels = Int32Array.from(samples, (s) => s.label);
  const report = evaluateClassifier(softmax(logits, meta.numClasses), labels, meta.classNames, {
    loss: crossEntropyFromLogits(logits, labels, meta.numClasses),
  });
  model.dispose();
  const out = values.out ?? join(dirname(file), `eval-${values.labels ? "labels" : subset}`);
  await Deno.mkdir(out, { recursive: true });
  const cfg = meta.config as Record<string, unknown>;
  const study: StudyResults = {
    adapter: g.info.name,
    isFallback: g.info.isFallback,
    date: new Date().toISOString(),
    profile: `evaluate ${setName}${values.tta ? " (TTA)" : ""}`,
    splitMode: String(cfg.split ?? "unknown"),
    models: [{
      config: {
        model: meta.model,
        epochs: meta.history.length,
        batchSize: Number(cfg.batchSize ?? batchSize),
        lr: Number(cfg.lr ?? NaN),
        imageSize: meta.imageSize,
        split: String(cfg.split ?? "unknown"),
        seed: Number(cfg.seed ?? 0),
        pretrained: cfg.pretrained !== undefined && cfg.pretrained !== "none",
        trainImages: 0,
        valImages: 0,
        testImages: samples.length,
      },
      epochs: meta.history,
      bestEpoch: meta.epoch,
      test: report,
    }],
  };
  await writeTextAtomic(join(out, "metrics.json"), JSON.stringify(study, null, 1) + "\n");
  await writeTextAtomic(
    join(out, "evaluation.json"),
    JSON.stringify(
      { checkpoint: file, set: setName, images: samples.length, tta: Boolean(values.tta), report },
      null,
      1,
    ) + "\n",
  );
  await writeReport(out, study);
  const mel = report.perClass.find((k) => k.name === "mel")?.recall;
  console.log(
    `accuracy ${(report.accuracy * 100).toFixed(2)}%, balanced accuracy ${
      (report.balancedAccuracy * 100).toFixed(2)
    }%, macro F1 ${report.macroF1.toFixed(3)}, melanoma recall ${
      mel == null ? "—" : (mel * 100).toFixed(2) + "%"
    }, macro AUC ${report.macroAuc?.toFixed(3) ?? "—"} (${
      (samples.length / seconds).toFixed(1)
    } img/s)`,
  );
  console.log(`wrote ${out}/metrics.json, evaluation.json, report.html`);
}
