/**
 * The adapter-aware profiles. They fill in every `train` setting not given as a flag:
 * - `full` (default on a hardware GPU): the study, 224 px, the full data, 20 epochs, batch 32,
 *   all four models.
 * - `quick` (default on a software adapter such as llvmpipe, where `gpu().info.isFallback`):
 *   QUICK below, 32 px, one epoch, a stratified subset of 1500 images (1200 train, 150 val,
 *   150 test), batch 32, all four models, sized so the study trains and tests within about 10
 *   minutes on a 2-core CPU. A smoke test of the whole pipeline, not a result.
 * `--profile quick|full` picks one explicitly; the first output lines announce it.
 * `--pretrained tfslim` is resolved to `tfslim:<folder>` here and refused unless every model is
 * mobilenet_v2.
 */
import { STUDY_MODELS } from "./models.ts";
import { resolvePretrainedFlag, type TrainOptions } from "./options.ts";

export type ProfileName = "quick" | "full";

/** The quick profile: what a software adapter trains by default. */
export const QUICK = {
  imageSize: 32,
  epochs: 1,
  batchSize: 32,
  limit: 1500,
} as const;

/** The full study. */
export const FULL = {
  imageSize: 224,
  epochs: 20,
  batchSize: 32,
  limit: 0,
} as const;

/** A timestamped default output folder, e.g. runs/2026-11-26T07-30-00. */
export function defaultOut(now = new Date()): string {
  return `runs/${now.toISOString().slice(0, 19).replace(/:/g, "-")}`;
}

/**
 * Fills in what the flags left open from the profile: `quick` when `isFallback` (unless
 * --profile says otherwise), else `full`.
 */
export function resolveTrainOptions(
  given: Partial<TrainOptions>,
  isFallback: boolean,
): TrainOptions {
  const profile: ProfileName = given.profile ?? (isFallback ? "quick" : "full");
  const p = profile === "quick" ? QUICK : FULL;
  const models = given.models ?? [...STUDY_MODELS];
  return {
    models,
    data: given.data,
    split: given.split ?? "lesion",
    epochs: given.epochs ?? p.epochs,
    batchSize: given.batchSize ?? p.batchSize,
    lr: given.lr ?? 1e-3,
    imageSize: given.imageSize ?? p.imageSize,
    pretrained: resolvePretrainedFlag(given.pretrained ?? "none", models),
    seed: given.seed ?? 0,
    out: given.out ?? defaultOut(),
    patience: given.patience ?? 3,
    earlyStop: given.earlyStop ?? 0,
    limit: given.limit ?? p.limit,
    classWeights: given.classWeights ?? false,
    checkpointEvery: given.checkpointEvery ?? 100,
    cacheDir: given.cacheDir,
    profile,
    logEvery: given.logEvery ?? 10,
    fromProfile: (["imageSize", "epochs", "batchSize", "limit"] as const).filter((k) =>
      given[k] === undefined
    ),
  };
}

/** The first lines printed: what will run and why. */
export function describeRun(
  o: TrainOptions,
  adapter: string,
  isFallback: boolean,
): string[] {
  const lines = [
    `dermagpu train: ${o.profile} profile on ${adapter}${isFallback ? " (software adapter)" : ""}`,
  ];
  if (o.profile === "quick" && (o.fromProfile?.length ?? 0) > 0) {
    lines.push(
      `quick profile: ${o.imageSize} px, ${o.epochs} epoch(s), ${
        o.limit ? `a stratified subset of ${o.limit} images` : "all images"
      }, batch ${o.batchSize}, models ${o.models.join(", ")}: a smoke test sized for ~10 min ` +
        `on a 2-core CPU. Pass --profile full (or explicit flags) for the study.`,
    );
  }
  lines.push(
    `models ${o.models.join(", ")}; ${o.split} split, seed ${o.seed}; ${o.epochs} epoch(s) of ` +
      `batch ${o.batchSize} at ${o.imageSize} px; Adam lr ${o.lr}; pretrained ${o.pretrained}; ` +
      `output ${o.out}`,
  );
  return lines;
}
