/**
 * MobileNetV2 as torchvision 0.14 defines it (width 1.0): features.0 is a 3x3 stride-2
 * Conv2dNormActivation, features.1-17 inverted residual blocks (`conv` Sequential: optional
 * 1x1 expansion, 3x3 depthwise, 1x1 linear projection + BatchNorm), features.18 the 1x1 conv to
 * 1280 channels; the classifier is Sequential(Dropout(0.2), Linear). Convolutions start from
 * kaiming_normal_(fan_out), the Linear from N(0, 0.01) with zero bias.
 *
 * `tfPadding: true` pads every convolution as TensorFlow's "SAME" does (for the TF-slim weights
 * in packages/models/tfslim_mobilenet_v2.ts): a stride-2 3x3 conv on an even-sized input pads
 * 0 top/left and 1 bottom/right, where torchvision pads 1 on every side. Same keys, shapes and
 * initial weights; the default (false) is torchvision's padding.
 */
import { mixSeed, Rng } from "../core/data/rng.ts";
import type { Tensor } from "../core/tensor.ts";
import { Module } from "../core/nn/module.ts";
import { Conv2d, type ConvInit } from "../core/nn/conv2d.ts";
import { BatchNorm2d } from "../core/nn/batchnorm2d.ts";
import { Sequential } from "../core/nn/sequential.ts";
import { Dropout } from "../core/nn/dropout.ts";
import { add } from "../core/ops/elementwise.ts";
import { globalAvgPool } from "../core/ops/pool.ts";
import { Activation, type ActivationName } from "../core/nn/activation.ts";
import { convNormAct, ImageClassifier, linearHead, type ModelOptions } from "./classifier.ts";

const INIT: ConvInit = { kaimingNormal: "fan_out" };

export interface MobileNetV2Options extends ModelOptions {
  /** Pad every convolution as TensorFlow's "SAME" (TF-slim weights); default false (torchvision). */
  tfPadding?: boolean;
}

interface ConvOpts {
  stride?: number;
  groups?: number;
  activation: ActivationName;
  init: ConvInit;
  rng: Rng;
}

/** `convNormAct`, or with `tf` the same layers (and initial weights) with TF "SAME" padding. */
function cna(inC: number, outC: number, kernel: number, o: ConvOpts, tf: boolean): Sequential {
  if (!tf) return convNormAct(inC, outC, kernel, o);
  const conv = new Conv2d(inC, outC, kernel, {
    stride: o.stride ?? 1,
    padding: "same",
    groups: o.groups ?? 1,
    bias: false,
    init: o.init,
    rng: o.rng,
  });
  return new Sequential([conv, new BatchNorm2d(outC), new Activation(o.activation)]);
}

export class InvertedResidual extends Module {
  readonly conv: Sequential;
  readonly useResidual: boolean;

  constructor(
    inC: number,
    outC: number,
    stride: number,
    expand: number,
    rng: Rng,
    tfPadding = false,
  ) {
    super();
    const hidden = Math.round(inC * expand);
    this.useResidual = stride === 1 && inC === outC;
    const o = { init: INIT, rng, activation: "relu6" as const };
    this.conv = this.child(
      "conv",
      new Sequential([
        expand !== 1 ? cna(inC, hidden, 1, o, tfPadding) : null,
        cna(hidden, hidden, 3, { ...o, stride, groups: hidden }, tfPadding),
        new Conv2d(hidden, outC, 1, { bias: false, init: INIT, rng }),
        new BatchNorm2d(outC),
      ]),
    );
  }

  forward(x: Tensor): Tensor {
    const y = this.conv.forward(x);
    return this.useResidual ? add(x, y) : y;
  }
}

/** [expansion t, channels c, repeats n, first stride s] per stage. */
const SETTINGS: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export class MobileNetV2 extends ImageClassifier {
  readonly arch = "mobilenet_v2";
  readonly headPrefix = "classifier.1.";
  readonly features: Sequential;
  readonly classifier: Sequential;
  /** Whether the convolutions pad as TensorFlow's "SAME" (see `MobileNetV2Options`). */
  readonly tfPadding: boolean;

  constructor(opts: MobileNetV2Options = {}) {
    super(opts.numClasses ?? 1000);
    const seed = opts.seed ?? 0;
    const rng = new Rng(seed);
    const tf = this.tfPadding = opts.tfPadding ?? false;
    const o = { init: INIT, rng, activation: "relu6" as const };
    const layers: Module[] = [cna(3, 32, 3, { ...o, stride: 2 }, tf)];
    let inC = 32;
    for (const [t, c, n, s] of SETTINGS) {
      for (let i = 0; i < n; i++) {
        layers.push(new InvertedResidual(inC, c, i === 0 ? s : 1, t, rng, tf));
        inC = c;
      }
    }
    const last = 1280;
    layers.push(cna(inC, last, 1, o, tf));
    this.features = this.child("features", new Sequential(layers));
    this.classifier = this.child(
      "classifier",
      new Sequential([
        new Dropout(opts.dropout ?? 0.2, { seed: mixSeed(seed, 1) }),
        linearHead(last, this.numClasses, { normal: 0.01 }, rng),
      ]),
    );
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(globalAvgPool(this.features.forward(x)));
  }
}

/** torchvision.models.mobilenet_v2 (3,504,872 parameters with 1000 classes). */
export function mobilenetV2(opts: MobileNetV2Options = {}): MobileNetV2 {
  return new MobileNetV2(opts);
}
