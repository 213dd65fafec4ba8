/**
 * One model's optimisation: Adam + ReduceLROnPlateau, the training step on the GPU and the
 * evaluation pass (logits of a labelled set, optionally with flip test-time augmentation).
 *
 * Training step: upload the uint8 batch, augment it on the GPU (RandomResizedCrop, flips,
 * rotation, ColorJitter, then `normalize`: ImageNet mean/std by default, [-1, 1] for the TF-slim
 * weights), forward, cross-entropy, backward, Adam step,
 * all inside `tidy`. Nothing is read back per step: the step's loss and logits are copied into
 * per-epoch GPU buffers (`EpochAccumulator`), read when the caller checks the losses (every
 * few steps, before a checkpoint, at the end of the epoch). Every random draw of a step comes
 * from (seed, epoch, step), so a resumed run repeats the interrupted one exactly.
 */
import { gpu } from "../../kernels/runtime/gpu.ts";
import {
  augmentBatch,
  type AugmentOptions,
  evalParams,
  type ImageParams,
  type Normalize,
  sampleAugmentParams,
} from "../../kernels/ops/augment.ts";
import { UserError } from "../../core/errors.ts";
import { backward, noGrad } from "../../core/autograd.ts";
import { fromBuffer, type Tensor, tensor } from "../../core/tensor.ts";
import { tidy } from "../../core/scope.ts";
import { crossEntropy } from "../../core/ops/softmax.ts";
import { add, mulScalar } from "../../core/ops/elementwise.ts";
import { Adam } from "../../core/optim/adam.ts";
import { ReduceLROnPlateau } from "../../core/optim/scheduler.ts";
import type { Module } from "../../core/nn/module.ts";
import { BatchNorm2d } from "../../core/nn/batchnorm2d.ts";
import type { Batch } from "../../core/data/loader.ts";
import { Loader } from "../../core/data/loader.ts";
import type { Sample } from "../../core/data/ham10000.ts";
import type { ImageSource } from "../../core/data/loader.ts";
import { mixSeed, Rng } from "../../core/data/rng.ts";

/** The training augmentation (torchvision-style RandomResizedCrop, flips, rotation, jitter). */
export const TRAIN_AUGMENT: AugmentOptions = {
  scale: [0.35, 1],
  ratio: [3 / 4, 4 / 3],
  hflip: 0.5,
  vflip: 0.5,
  degrees: 20,
  brightness: 0.2,
  contrast: 0.2,
  saturation: 0.2,
  hue: 0.02,
};

export interface TrainerOptions {
  numClasses: number;
  /** Square input side of the network. */
  imageSize: number;
  lr: number;
  seed: number;
  /** ReduceLROnPlateau patience (factor 0.1) on the validation loss. */
  patience: number;
  /** Per-class loss weights (inverse frequency), or none. */
  classWeights?: Float32Array | null;
  augment?: AugmentOptions;
  /** Input normalisation after augmentation, in training and evaluation (default imagenet). */
  normalize?: Normalize;
  /**
   * Keep every BatchNorm2d in eval mode while training (running statistics, frozen; its weight
   * and bias still learn). For the TF-slim weights, whose BatchNorm is folded into the convs:
   * batch statistics would undo the folding (the last layer's ReLU6 outputs all zeros).
   */
  freezeBatchNorm?: boolean;
}

/**
 * Thrown when the loss, the weights or the logits stop being finite; a UserError so the CLI
 * prints one line. `detail` says what and where, e.g. "the loss is NaN at step 7 (epoch 1,
 * batch 7)".
 */
export class DivergedError extends UserError {
  constructor(detail: string) {
    super(`training diverged: ${detail}; try a lower --lr`);
  }

  /** The loss of global step `step` (batch `batch` of 1-based epoch `epoch`) is `v`. */
  static loss(v: number, step: number, epoch: number, batch: number): DivergedError {
    const what = Number.isNaN(v) ? "NaN" : "infinite";
    return new DivergedError(
      `the loss is ${what} at step ${step} (epoch ${epoch}, batch ${batch})`,
    );
  }
}

/** Throws DivergedError when `values` (logits of `what`) hold a NaN or an infinity. */
export function assertFiniteLogits(values: Float32Array, what: string): void {
  if (!values.every(Number.isFinite)) {
    throw new DivergedError(`the ${what} logits are not finite`);
  }
}

/** Pads a byte array to a multiple of 4 bytes (WebGPU copies whole words). */
export function pad4(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength % 4 === 0) return bytes;
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(bytes);
  return out;
}

/** The seed of step `step` of epoch `epoch` (augmentation draws). */
export function stepSeed(seed: number, epoch: number, step: number): number {
  return mixSeed(seed, 0xa11, epoch, step);
}

/**
 * Per-epoch results kept on the GPU: the logits of every training image (in delivery order)
 * and each step's loss. `read()` copies back what is new and checks the losses are finite.
 */
export class EpochAccumulator {
  readonly logits: GPUBuffer;
  readonly losses: GPUBuffer;
  /** Images and steps recorded so far. */
  images = 0;
  steps = 0;
  /** Losses already read back (and checked), by step. */
  readonly lossValues: number[] = [];
  /** Batch size of each step. */
  readonly stepImages: number[] = [];

  constructor(
    readonly numImages: number,
    readonly numSteps: number,
    readonly numClasses: number,
  ) {
    const g = gpu();
    this.logits = g.pool.acquire(Math.max(1, numImages * numClasses) * 4);
    this.losses = g.pool.acquire(Math.max(1, numSteps) * 4);
  }

  /** Records a step's logits [n, C] and loss (scalar): two GPU copies. */
  record(logits: Tensor, loss: Tensor, n: number): void {
    const enc = gpu().batcher.encoder();
    const row = this.numClasses * 4;
    enc.copyBufferToBuffer(logits.buffer, 0, this.logits, this.images * row, n * row);
    enc.copyBufferToBuffer(loss.buffer, 0, this.losses, this.steps * 4, 4);
    this.images += n;
    this.steps++;
    this.stepImages.push(n);
  }

  /** Puts back a resumed epoch's first steps (logits, losses, batch sizes). */
  restore(logits: Float32Array, losses: Float32Array, stepImages: number[]): void {
    const g = gpu();
    if (logits.length) g.write(this.logits, logits);
    if (losses.length) g.write(this.losses, losses);
    this.images = logits.length / this.numClasses;
    this.steps = losses.length;
    this.stepImages.push(...stepImages);
    this.lossValues.push(...losses);
  }

  /**
   * Reads the losses recorded since the last call and returns them; throws DivergedError at
   * the first one that is not finite. `firstStep` is the global step number of step 0.
   */
  async checkLosses(epoch: number, firstStep: number): Promise<number[]> {
    const from = this.lossValues.length;
    if (this.steps === from) return [];
    const bytes = await gpu().read(this.losses, (this.steps - from) * 4, from * 4);
    const fresh = [...new Float32Array(bytes)];
    fresh.forEach((v, i) => {
      if (!Number.isFinite(v)) {
        const batch = from + i + 1;
        throw DivergedError.loss(v, firstStep + batch, epoch, batch);
      }
    });
    this.lossValues.push(...fresh);
    return fresh;
  }

  /** The logits recorded so far (one readback). */
  async readLogits(): Promise<Float32Array> {
    if (this.images === 0) return new Float32Array(0);
    const bytes = await gpu().read(this.logits, this.images * this.numClasses * 4);
    return new Float32Array(bytes);
  }

  /** Mean loss per image over the steps read so far. */
  meanLoss(): number {
    let s = 0, n = 0;
    this.lossValues.forEach((v, i) => {
      s += v * this.stepImages[i];
      n += this.stepImages[i];
    });
    return n ? s / n : NaN;
  }

  dispose(): void {
    gpu().pool.release(this.logits);
    gpu().pool.release(this.losses);
  }
}

export class Trainer {
  readonly optimizer: Adam;
  readonly scheduler: ReduceLROnPlateau;
  readonly augment: AugmentOptions;
  readonly normalize: Normalize;
  #weights: Tensor | null;

  constructor(readonly model: Module, readonly opts: TrainerOptions) {
    this.optimizer = new Adam(model.parameters(), { lr: opts.lr });
    this.scheduler = new ReduceLROnPlateau(this.optimizer, {
      factor: 0.1,
      patience: opts.patience,
    });
    this.augment = opts.augment ?? TRAIN_AUGMENT;
    this.normalize = opts.normalize ?? "imagenet";
    this.#weights = opts.classWeights ? tensor(opts.classWeights).keep() : null;
  }

  /** The order of the training samples in `epoch` (a permutation seeded by (seed, epoch)). */
  epochOrder(samples: readonly Sample[], epoch: number): Int32Array {
    return new Loader({
      samples,
      cache: NO_SOURCE,
      batchSize: 1,
      order: "shuffle",
      seed: this.opts.seed,
    })
      .indices(epoch);
  }

  /**
   * One optimisation step on `batch` (step `step`, 0-based, of epoch `epoch`, 0-based); the
   * logits and loss go to `acc`. No readback; `gpu().check()` surfaces device errors (out of
   * memory) reported so far.
   */
  step(batch: Batch, epoch: number, step: number, acc: EpochAccumulator): void {
    const g = gpu();
    const S = this.opts.imageSize;
    const params = sampleAugmentParams(
      new Rng(stepSeed(this.opts.seed, epoch, step)),
      batch.n,
      batch.height,
      batch.width,
      this.augment,
    );
    const x = this.#augment(batch, params, S);
    this.model.train();
    if (this.opts.freezeBatchNorm) freezeBatchNorm(this.model);
    tidy(() => {
      const labels = tensor(batch.labels);
      const logits = this.model.forward(x);
      const loss = crossEntropy(logits, labels, this.#weights ? { weights: this.#weights } : {});
      acc.record(logits, loss, batch.n);
      backward(loss);
      this.optimizer.step();
      this.optimizer.zeroGrad();
    });
    x.dispose();
    g.check();
  }

  #augment(batch: Batch, params: ImageParams[], S: number): Tensor {
    const g = gpu();
    const u8 = g.upload(pad4(batch.images));
    const out = augmentBatch(g, u8, {
      n: batch.n,
      inH: batch.height,
      inW: batch.width,
      outH: S,
      outW: S,
      params,
      normalize: this.normalize,
    });
    g.pool.release(u8);
    return fromBuffer(out, [batch.n, S, S, 3]);
  }

  /**
   * Logits [N, C] of `samples` in their order (eval mode, resize + centre crop). With `tta`,
   * the mean of the logits of the image, its horizontal flip and its vertical flip. One readback.
   */
  async predict(
    samples: readonly Sample[],
    cache: ImageSource,
    opts: { batchSize: number; tta?: boolean; onBatch?: (done: number, n: number) => void },
  ): Promise<Float32Array> {
    return await predictLogits(this.model, samples, cache, {
      ...opts,
      imageSize: this.opts.imageSize,
      numClasses: this.opts.numClasses,
      normalize: this.normalize,
    });
  }

  dispose(): void {
    this.optimizer.dispose();
    this.#weights?.dispose();
  }
}

/** Puts every BatchNorm2d of `model` in eval mode (frozen statistics); returns how many. */
export function freezeBatchNorm(model: Module): number {
  let n = 0;
  const walk = (m: Module) => {
    if (m instanceof BatchNorm2d) {
      m.eval();
      n++;
    }
    for (const [, c] of m.children()) walk(c);
  };
  walk(model);
  return n;
}

const NO_SOURCE: ImageSource = {
  height: 1,
  width: 1,
  bytes: 3,
  get: () => Promise.reject(new Error("no images")),
};

/** Logits of `samples` under `model` in eval mode; see Trainer.predict. */
export async function predictLogits(
  model: Module,
  samples: readonly Sample[],
  cache: ImageSource,
  opts: {
    batchSize: number;
    imageSize: number;
    numClasses: number;
    /** Input normalisation (default imagenet): the one the model was trained with. */
    normalize?: Normalize;
    tta?: boolean;
    onBatch?: (done: number, n: number) => void;
  },
): Promise<Float32Array> {
  const g = gpu();
  const C = opts.numClasses, S = opts.imageSize;
  const out = g.pool.acquire(Math.max(1, samples.length * C) * 4);
  const loader = new Loader({ samples, cache, batchSize: opts.batchSize, order: "sequential" });
  model.eval();
  let done = 0, step = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      const base = evalParams(batch.n, batch.height, batch.width, S, S);
      const views = opts.tta
        ? [base, base.map((p) => ({ ...p, hflip: true })), base.map((p) => ({ ...p, vflip: true }))]
        : [base];
      const u8 = g.upload(pad4(batch.images));
      noGrad(() =>
        tidy(() => {
          let sum: Tensor | null = null;
          for (const params of views) {
            const x = fromBuffer(
              augmentBatch(g, u8, {
                n: batch.n,
                inH: batch.height,
                inW: batch.width,
                outH: S,
                outW: S,
                params,
                normalize: opts.normalize ?? "imagenet",
              }),
              [batch.n, S, S, 3],
            );
            const logits = model.forward(x);
            sum = sum ? add(sum, logits) : logits;
          }
          const mean = views.length > 1 ? mulScalar(sum!, 1 / views.length) : sum!;
          g.batcher.encoder().copyBufferToBuffer(
            mean.buffer,
            0,
            out,
            done * C * 4,
            batch.n * C * 4,
          );
        })
      );
      g.pool.release(u8);
      g.check();
      done += batch.n;
      opts.onBatch?.(++step, batch.n);
    }
    if (done === 0) return new Float32Array(0);
    return new Float32Array(await g.read(out, done * C * 4));
  } finally {
    g.pool.release(out);
    model.train();
  }
}
