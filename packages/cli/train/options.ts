/**
 * `train` flags: parsing and validation (profile.ts fills in what is not given).
 */
import { parseArgs } from "node:util";
import { UserError } from "../../core/errors.ts";
import { SPLIT_MODES, type SplitMode } from "../../core/data/split.ts";
import { defaultTfSlimDir } from "../../models/tfslim_mobilenet_v2.ts";
import { MODEL_CHOICES } from "./models.ts";
import type { ProfileName } from "./profile.ts";

export interface TrainOptions {
  models: string[];
  data?: string;
  split: SplitMode;
  epochs: number;
  batchSize: number;
  lr: number;
  imageSize: number;
  /** "none", "torchvision", "tfslim:DIR" (resolved from "tfslim") or a weights file. */
  pretrained: string;
  seed: number;
  out: string;
  /** ReduceLROnPlateau patience (epochs without val-loss improvement before lr x 0.1). */
  patience: number;
  /** Stop after this many epochs without a better val balanced accuracy (0: never). */
  earlyStop: number;
  /** Images in total (stratified subset of each split, 80/10/10); 0: all. */
  limit: number;
  classWeights: boolean;
  /** Steps between mid-epoch checkpoints (0: only at epoch ends). */
  checkpointEvery: number;
  /** Image cache folder (default ~/.cache/dermagpu). */
  cacheDir?: string;
  profile: ProfileName;
  /** Plain-log progress line every N batches. */
  logEvery: number;
  /** The settings the profile filled in (not given as flags). */
  fromProfile?: string[];
}

export const TRAIN_USAGE = `usage: train [options]      train, validate and test the study's CNNs
       train --resume DIR   continue a stopped run (same options, data order, augmentation)

  --model NAME          repeatable or comma-separated: ${MODEL_CHOICES.join(", ")}
                        (default: the four study models; tiny is a test model)
  --data DIR            HAM10000 folder (default: $HAM10000_DIR, else ./data)
  --split lesion|random lesion-grouped (default) or the study's random image split
  --epochs N            default 20 (full profile) / 1 (quick)
  --batch-size N        default 32
  --lr X                Adam learning rate, default 1e-3
  --image-size PX       default 224 (full) / 32 (quick)
  --pretrained none|torchvision|tfslim[:DIR]|FILE
                        torchvision: ImageNet .pth (downloaded once, cached);
                        tfslim: mobilenet_v2 only: Google's TF-slim ImageNet weights (BN folded,
                        its statistics frozen in training), TF padding and [-1, 1] inputs, which
                        the checkpoint records for evaluate, predict and --resume; DIR defaults to
                        ../shared/weights/mobilenet_v2/tfslim_mobilenet_v2_1.0_224_fp32_bnfolded_npy
                        FILE: weights for everything but the head
  --seed S              default 0; every random draw derives from (seed, epoch, step)
  --out DIR             default runs/<timestamp>
  --patience N          ReduceLROnPlateau patience on val loss (factor 0.1), default 3
  --early-stop N        stop after N epochs without a better val balanced accuracy
  --limit N             stratified subset of N images (80/10/10), default all / 1500 (quick)
  --class-weights       inverse-frequency class weights in the loss
  --checkpoint-every K  also checkpoint every K steps (default 100; 0: epoch ends only)
  --cache-dir DIR       decoded-image cache (default ~/.cache/dermagpu)
  --profile quick|full  default: quick on a software adapter (llvmpipe), else full
  --log-every N         plain progress line every N batches (default 10)`;

export interface ParsedTrainArgs {
  /** Set when --resume was given: everything else comes from DIR/run.json. */
  resume?: string;
  /** The flags as given (undefined when absent). */
  given: Partial<TrainOptions>;
  help: boolean;
}

function intFlag(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UserError(`--${name} ${v}: expected an integer >= ${min}`);
  }
  return n;
}

/** The models `--pretrained tfslim` has weights for. */
export const TFSLIM_MODELS: readonly string[] = ["mobilenet_v2"];

/**
 * The TF-slim weights folder `--pretrained` names: "tfslim" (the shared store,
 * `defaultTfSlimDir()`) or "tfslim:DIR"; undefined for any other value.
 */
export function tfSlimDir(pretrained: string): string | undefined {
  if (pretrained === "tfslim") return defaultTfSlimDir();
  if (!pretrained.startsWith("tfslim:")) return undefined;
  const dir = pretrained.slice("tfslim:".length);
  if (!dir.trim()) {
    throw new UserError(
      `--pretrained ${pretrained}: no folder after 'tfslim:'; pass tfslim or tfslim:DIR`,
    );
  }
  return dir;
}

/**
 * `--pretrained` checked against the models it is for: "tfslim" becomes "tfslim:<folder>" (so
 * run.json records the folder); tfslim with a model that has no TF-slim weights is a UserError.
 */
export function resolvePretrainedFlag(pretrained: string, models: readonly string[]): string {
  const dir = tfSlimDir(pretrained);
  if (dir === undefined) return pretrained;
  const others = models.filter((m) => !TFSLIM_MODELS.includes(m));
  if (others.length) {
    throw new UserError(
      `--pretrained ${pretrained}: TF-slim weights exist only for ${TFSLIM_MODELS.join(", ")}, ` +
        `not ${others.join(", ")}; pass --model mobilenet_v2 (or another --pretrained)`,
    );
  }
  return `tfslim:${dir}`;
}

/** Parses the command line; a UserError names the bad flag. */
export function parseTrainArgs(args: string[]): ParsedTrainArgs {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        model: { type: "string", multiple: true },
        data: { type: "string" },
        split: { type: "string" },
        epochs: { type: "string" },
        "batch-size": { type: "string" },
        lr: { type: "string" },
        "image-size": { type: "string" },
        pretrained: { type: "string" },
        seed: { type: "string" },
        out: { type: "string" },
        patience: { type: "string" },
        "early-stop": { type: "string" },
        limit: { type: "string" },
        "class-weights": { type: "boolean" },
        "checkpoint-every": { type: "string" },
        "cache-dir": { type: "string" },
        profile: { type: "string" },
        "log-every": { type: "string" },
        resume: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UserError(`${(e as Error).message}; see train --help`);
  }
  const s = (k: string) => values[k] as string | undefined;
  const given: Partial<TrainOptions> = {};
  const models = (values.model as string[] | undefined)?.flatMap((m) => m.split(","))
    .map((m) => m.trim()).filter(Boolean);
  if (models?.length) {
    for (const m of models) {
      if (!MODEL_CHOICES.includes(m)) {
        throw new UserError(`--model ${m}: unknown model; choose from ${MODEL_CHOICES.join(", ")}`);
      }
    }
    given.models = [...new Set(models)];
  }
  if (s("data") !== undefined) given.data = s("data");
  if (s("split") !== undefined) {
    if (!SPLIT_MODES.includes(s("split") as SplitMode)) {
      throw new UserError(`--split ${s("split")}: expected ${SPLIT_MODES.join(" or ")}`);
    }
    given.split = s("split") as SplitMode;
  }
  given.epochs = intFlag("epochs", s("epochs"), 1);
  given.batchSize = intFlag("batch-size", s("batch-size"), 1);
  given.imageSize = intFlag("image-size", s("image-size"), 8);
  given.seed = intFlag("seed", s("seed"), 0);
  given.patience = intFlag("patience", s("patience"), 0);
  given.earlyStop = intFlag("early-stop", s("early-stop"), 0);
  given.limit = intFlag("limit", s("limit"), 8);
  given.checkpointEvery = intFlag("checkpoint-every", s("checkpoint-every"), 0);
  given.logEvery = intFlag("log-every", s("log-every"), 1);
  if (s("lr") !== undefined) {
    const lr = Number(s("lr"));
    if (!(lr > 0) || !Number.isFinite(lr)) {
      throw new UserError(`--lr ${s("lr")}: expected a positive number, e.g. 1e-3`);
    }
    given.lr = lr;
  }
  if (s("pretrained") !== undefined) {
    given.pretrained = s("pretrained");
    tfSlimDir(given.pretrained!); // rejects "tfslim:" without a folder
  }
  if (s("out") !== undefined) given.out = s("out");
  if (s("cache-dir") !== undefined) given.cacheDir = s("cache-dir");
  if (values["class-weights"]) given.classWeights = true;
  if (s("profile") !== undefined) {
    if (s("profile") !== "quick" && s("profile") !== "full") {
      throw new UserError(`--profile ${s("profile")}: expected quick or full`);
    }
    given.profile = s("profile") as ProfileName;
  }
  for (const k of Object.keys(given) as (keyof TrainOptions)[]) {
    if (given[k] === undefined) delete given[k];
  }
  const resume = s("resume");
  if (resume !== undefined && Object.keys(given).length) {
    throw new UserError(
      `--resume ${resume} takes no other flags: the run continues with the options in ` +
        `${resume}/run.json`,
    );
  }
  return { resume, given, help: Boolean(values.help) };
}
