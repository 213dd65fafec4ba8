/**
 * What the four torchvision classifiers share: options, the replaceable head (named by its
 * state_dict key prefix), freezing the backbone, and torchvision's Conv2dNormActivation.
 */
import { Module } from "../core/nn/module.ts";
import { Conv2d, type ConvInit } from "../core/nn/conv2d.ts";
import { BatchNorm2d } from "../core/nn/batchnorm2d.ts";
import { Activation, type ActivationName } from "../core/nn/activation.ts";
import { Sequential } from "../core/nn/sequential.ts";
import { Linear } from "../core/nn/linear.ts";
import type { Rng } from "../core/data/rng.ts";
import type { Tensor } from "../core/tensor.ts";
import { normal, uniform } from "../core/nn/init.ts";
import { zeros } from "../core/tensor.ts";

export interface ModelOptions {
  /** Output classes (default 1000, ImageNet); 7 for HAM10000. Only the head depends on it. */
  numClasses?: number;
  /** Seeds the initial weights, dropout masks and stochastic depth (default 0). */
  seed?: number;
  /** Classifier dropout probability (MobileNetV2 and EfficientNet-B0; default 0.2). */
  dropout?: number;
}

export abstract class ImageClassifier extends Module {
  /** The registry name ("resnet18", ...). */
  abstract readonly arch: string;
  /** The state_dict key prefix of the classifier head ("fc.", "classifier.", ...). */
  abstract readonly headPrefix: string;

  constructor(readonly numClasses: number) {
    super();
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new Error(`numClasses must be a positive integer, got ${numClasses}`);
    }
  }

  /** x [N, H, W, 3] (NHWC) -> logits [N, numClasses]. */
  abstract override forward(x: Tensor): Tensor;

  /** Parameters of the head (trained when the backbone is frozen). */
  headParameters(): Tensor[] {
    return this.namedParameters().filter(([n]) => n.startsWith(this.headPrefix)).map(([, t]) => t);
  }

  /** Stops gradients for every parameter outside the head (BatchNorm statistics still update in training mode). */
  freezeBackbone(): this {
    for (const [n, p] of this.namedParameters()) p.requiresGrad = n.startsWith(this.headPrefix);
    return this;
  }

  /** Trains every parameter again. */
  unfreeze(): this {
    return this.requiresGrad(true);
  }
}

/** torchvision's Conv2dNormActivation: conv (no bias) + BatchNorm2d + activation (if any). */
export function convNormAct(
  inC: number,
  outC: number,
  kernel: number,
  opts: {
    stride?: number;
    groups?: number;
    activation?: ActivationName | null;
    init: ConvInit;
    rng: Rng;
  },
): Sequential {
  const conv = new Conv2d(inC, outC, kernel, {
    stride: opts.stride ?? 1,
    padding: (kernel - 1) >> 1,
    groups: opts.groups ?? 1,
    bias: false,
    init: opts.init,
    rng: opts.rng,
  });
  const act = opts.activation === null ? null : new Activation(opts.activation ?? "relu");
  return new Sequential([conv, new BatchNorm2d(outC), act]);
}

/** A Linear layer initialised as the model's torchvision definition does. */
export function linearHead(
  inF: number,
  outF: number,
  init: "default" | "zero-bias" | { normal: number } | "uniform-out",
  rng: Rng,
): Linear {
  const fc = new Linear(inF, outF, { rng });
  if (init === "default") return fc;
  fc.setTensor("bias", zeros([outF]));
  if (typeof init === "object") fc.setTensor("weight", normal([outF, inF], init.normal, rng));
  else if (init === "uniform-out") {
    fc.setTensor("weight", uniform([outF, inF], 1 / Math.sqrt(outF), rng));
  }
  return fc;
}
