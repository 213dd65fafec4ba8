/**
 * Checkpoints: one safetensors file holding
 * - the model's weights under their PyTorch names and layout (`exportStateDict`: conv weights
 *   OIHW, `num_batches_tracked` int64), so the file loads in PyTorch and as `--pretrained`;
 * - with the training state (`last.safetensors`): Adam's first and second moments per
 *   parameter under `_train.adam_m.<name>` / `_train.adam_v.<name>` (the model's own layout,
 *   conv weights HWIO), and the interrupted epoch's logits and per-step losses so far
 *   (`_train.epoch_logits`, `_train.epoch_losses`);
 * - `__metadata__.dermagpu`: JSON `CheckpointMeta` (run config, epoch, step within the epoch,
 *   Adam step count and lr, scheduler state, best epoch, history, and how the model sees its
 *   input: `normalize` and `tfPadding`, which `evaluate`, `predict` and `--resume` rebuild).
 * Files are written atomically (temp file + rename): a killed run leaves the previous file.
 */
import { gpu } from "../../kernels/runtime/gpu.ts";
import { UserError } from "../../core/errors.ts";
import { loadSafetensorsFile, saveSafetensorsFile } from "../../core/io/load.ts";
import type { StateDict, StateTensor } from "../../core/io/state_dict.ts";
import type { EpochRecord } from "../../core/metrics/run_results.ts";
import type { Module } from "../../core/nn/module.ts";
import { tensor } from "../../core/tensor.ts";
import { exportStateDict, loadStateDict } from "../../models/load_weights.ts";
import { DivergedError, type EpochAccumulator, type Trainer } from "./trainer.ts";

export const TRAIN_PREFIX = "_train.";
const META_KEY = "dermagpu";

/** What a checkpoint records besides tensors. Plain JSON. */
export interface CheckpointMeta {
  format: "dermagpu-checkpoint";
  version: 1;
  /** Model name ("resnet18", ...). */
  model: string;
  numClasses: number;
  classNames: string[];
  imageSize: number;
  /** The run's options (see options.ts), for `--resume` and `evaluate`. */
  config: Record<string, unknown>;
  /** Epochs completed. */
  epoch: number;
  /** Steps completed in epoch `epoch` (0-based) when saved mid-epoch; 0 at an epoch boundary. */
  step: number;
  /** Optimisation steps since the start of training. */
  globalStep: number;
  optimizer: { steps: number; lr: number } | null;
  scheduler: { best: number | null; badEpochs: number; cooldownLeft: number } | null;
  /** Batch size of each step recorded in `_train.epoch_losses`. */
  stepImages: number[];
  /** Best epoch so far (1-based) and its validation balanced accuracy. */
  best: { epoch: number; balancedAccuracy: number } | null;
  history: EpochRecord[];
  /** The input normalisation the model was trained with (absent in old files: imagenet). */
  normalize?: InputNormalize;
  /** Whether the model pads as TensorFlow "SAME" (TF-slim weights; absent: false). */
  tfPadding?: boolean;
  /** Wall seconds spent in the interrupted epoch before the checkpoint. */
  epochSeconds?: number;
  /** Call counters of seeded random modules (Dropout, StochasticDepth), by module path. */
  counters?: Record<string, number>;
  /**
   * The loader and augmentation position: every draw derives from (seed, epoch, step), so
   * `epoch` and `step` above are the whole state; `scheme` says how.
   */
  rng?: { seed: number; epoch: number; step: number; scheme: string };
}

/** The input normalisations a checkpoint can record. */
export type InputNormalize = "imagenet" | "minus1to1";
const INPUT_NORMALIZE: readonly InputNormalize[] = ["imagenet", "minus1to1"];

/** How a model sees its input: the normalisation and the padding it was built with. */
export interface ModelInput {
  normalize: InputNormalize;
  tfPadding: boolean;
}

/** torchvision weights (and every checkpoint older than the fields): ImageNet mean/std. */
export const IMAGENET_INPUT: ModelInput = { normalize: "imagenet", tfPadding: false };

/** Google's TF-slim weights: inputs in [-1, 1], TensorFlow "SAME" padding. */
export const TFSLIM_INPUT: ModelInput = { normalize: "minus1to1", tfPadding: true };

/**
 * The input settings `meta` records (`file` is named in errors): a missing field means the
 * default of the checkpoints written before it existed (imagenet, no TF padding).
 */
export function checkpointInput(meta: CheckpointMeta, file: string): ModelInput {
  const normalize = meta.normalize ?? "imagenet";
  if (!INPUT_NORMALIZE.includes(normalize)) {
    throw new UserError(
      `${file}: unknown input normalisation '${String(normalize)}' in its metadata (expected ` +
        `${INPUT_NORMALIZE.join(" or ")}); pass a checkpoint written by train`,
    );
  }
  const tfPadding = meta.tfPadding ?? false;
  if (typeof tfPadding !== "boolean") {
    throw new UserError(
      `${file}: tfPadding in its metadata is not true or false; pass a checkpoint written by train`,
    );
  }
  return { normalize, tfPadding };
}

/** How train derives its random draws (recorded in each checkpoint). */
export const RNG_SCHEME =
  "order: Rng(mixSeed(seed, epoch)).shuffle(train indices); augmentation of step s: " +
  "Rng(mixSeed(seed, 0xa11, epoch, s)); a resumed epoch skips its first `step` batches";

/**
 * The call counters of the modules that expose a numeric, writable `calls` (seeded random
 * modules whose masks come from (seed, calls)), by dotted module path.
 */
export function moduleCounters(model: Module): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (m: Module, path: string) => {
    const calls = (m as unknown as { calls?: unknown }).calls;
    if (typeof calls === "number") out[path] = calls;
    for (const [n, c] of m.children()) walk(c, path ? `${path}.${n}` : n);
  };
  walk(model, "");
  return out;
}

/** Puts back counters saved by `moduleCounters`. */
export function restoreModuleCounters(model: Module, counters: Record<string, number>): void {
  const walk = (m: Module, path: string) => {
    if (Object.hasOwn(counters, path)) {
      (m as unknown as { calls: number }).calls = counters[path];
    }
    for (const [n, c] of m.children()) walk(c, path ? `${path}.${n}` : n);
  };
  walk(model, "");
}

function f32(data: Float32Array, shape: number[]): StateTensor {
  return { dtype: "float32", shape, data };
}

/** Throws DivergedError when a weight is not finite. */
function assertFinite(name: string, data: Float32Array): void {
  if (!data.every(Number.isFinite)) throw new DivergedError(`parameter ${name} is not finite`);
}

/**
 * The model's weights in PyTorch's layout (one readback per tensor); throws DivergedError when
 * one is not finite. Pass the result to several `saveCheckpoint` calls to read back once.
 */
export async function exportWeights(model: Module): Promise<StateDict> {
  const sd: StateDict = await exportStateDict(model);
  for (const [k, t] of sd) if (t.data instanceof Float32Array) assertFinite(k, t.data);
  return sd;
}

/**
 * Writes a checkpoint of `model` (and, when `training` is set, the optimizer state and the
 * interrupted epoch's accumulators). `weights` (from `exportWeights`) saves a readback.
 * Refuses (throws) to save non-finite weights, so the previous checkpoint stays the last good
 * one.
 */
export async function saveCheckpoint(
  path: string,
  model: Module,
  meta: CheckpointMeta,
  training?: { trainer: Trainer; acc?: EpochAccumulator | null },
  weights?: StateDict,
): Promise<void> {
  const sd: StateDict = new Map(weights ?? await exportWeights(model));
  if (training) {
    const opt = training.trainer.optimizer;
    for (const [name, p] of model.namedParameters()) {
      const slots = opt.state.get(p);
      if (!slots) continue;
      const [m, v] = await Promise.all(slots.map((s) => s.read()));
      sd.set(`${TRAIN_PREFIX}adam_m.${name}`, f32(m as Float32Array, [...p.shape]));
      sd.set(`${TRAIN_PREFIX}adam_v.${name}`, f32(v as Float32Array, [...p.shape]));
    }
    const acc = training.acc;
    if (acc && acc.steps > 0) {
      const logits = await acc.readLogits();
      sd.set(`${TRAIN_PREFIX}epoch_logits`, f32(logits, [acc.images, acc.numClasses]));
      sd.set(`${TRAIN_PREFIX}epoch_losses`, f32(Float32Array.from(acc.lossValues), [acc.steps]));
    }
  }
  await saveSafetensorsFile(path, sd, { [META_KEY]: JSON.stringify(meta) });
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  /** Model weights only (PyTorch names and layout). */
  weights: StateDict;
  /** The `_train.` entries, without the prefix. */
  training: StateDict;
}

/**
 * The checkpoint held by a parsed safetensors file, or null when the file has no dermagpu
 * metadata at all (plain weights); metadata that is there but unreadable is a UserError.
 */
export function asCheckpoint(
  stateDict: StateDict,
  metadata: Record<string, string>,
  path: string,
): LoadedCheckpoint | null {
  const raw = metadata[META_KEY];
  if (raw === undefined) return null;
  let meta: CheckpointMeta | null = null;
  try {
    meta = JSON.parse(raw) as CheckpointMeta;
  } catch {
    meta = null;
  }
  if (!meta || meta.format !== "dermagpu-checkpoint") {
    throw new UserError(
      `${path}: not a dermagpu checkpoint (its dermagpu metadata is unreadable); pass a ` +
        `best.safetensors or last.safetensors written by train`,
    );
  }
  const weights: StateDict = new Map(), training: StateDict = new Map();
  for (const [k, t] of stateDict) {
    if (k.startsWith(TRAIN_PREFIX)) training.set(k.slice(TRAIN_PREFIX.length), t);
    else weights.set(k, t);
  }
  return { meta, weights, training };
}

/** Reads a checkpoint written by saveCheckpoint; a UserError if it is not one. */
export async function readCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const { stateDict, metadata } = await loadSafetensorsFile(path);
  const ckpt = asCheckpoint(stateDict, metadata, path);
  if (!ckpt) {
    throw new UserError(
      `${path}: not a dermagpu checkpoint (no dermagpu metadata); pass a best.safetensors or ` +
        `last.safetensors written by train`,
    );
  }
  return ckpt;
}

/** Loads the checkpoint's weights into `model` (strict: every key and shape must match). */
export function loadCheckpointWeights(model: Module, ckpt: LoadedCheckpoint, file: string): void {
  loadStateDict(model, ckpt.weights, { strict: true, file, normalize: false });
}

/**
 * Restores Adam's moments, step count and lr and the scheduler from a checkpoint. Call after
 * loading the weights and constructing the trainer (the parameters must be the trainer's).
 */
export function restoreTrainingState(trainer: Trainer, ckpt: LoadedCheckpoint): void {
  const opt = trainer.optimizer;
  const { meta, training } = ckpt;
  for (const [name, p] of trainer.model.namedParameters()) {
    const m = training.get(`adam_m.${name}`), v = training.get(`adam_v.${name}`);
    if (!m || !v) continue;
    for (const s of opt.state.get(p) ?? []) s.dispose();
    opt.state.set(p, [
      tensor(m.data as Float32Array, p.shape).keep(),
      tensor(v.data as Float32Array, p.shape).keep(),
    ]);
  }
  if (meta.optimizer) {
    opt.steps = meta.optimizer.steps;
    opt.lr = meta.optimizer.lr;
  }
  if (meta.scheduler) {
    trainer.scheduler.load({ ...meta.scheduler, best: meta.scheduler.best ?? Infinity });
  }
  if (meta.counters) restoreModuleCounters(trainer.model, meta.counters);
  gpu().check();
}

/** The interrupted epoch's saved logits and losses, if the checkpoint is mid-epoch. */
export function savedEpochProgress(
  ckpt: LoadedCheckpoint,
): { logits: Float32Array; losses: Float32Array; stepImages: number[] } | null {
  if (ckpt.meta.step === 0) return null;
  const logits = ckpt.training.get("epoch_logits"), losses = ckpt.training.get("epoch_losses");
  if (!logits || !losses) return null;
  return {
    logits: logits.data as Float32Array,
    losses: losses.data as Float32Array,
    stepImages: ckpt.meta.stepImages,
  };
}

/** JSON for the scheduler state (Infinity is not JSON). */
export function schedulerMeta(trainer: Trainer): CheckpointMeta["scheduler"] {
  const s = trainer.scheduler.toJSON();
  return { ...s, best: Number.isFinite(s.best) ? s.best : null };
}
