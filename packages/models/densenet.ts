/**
 * DenseNet-121 as torchvision 0.14 defines it (growth 32, blocks [6, 12, 24, 16], 64 initial
 * features, bn_size 4, no dropout): `features` is a named Sequential (conv0, norm0, relu0,
 * pool0, denseblock1, transition1, ..., norm5), dense layers are norm1/relu1/conv1/norm2/
 * relu2/conv2. Convolutions start from kaiming_normal_ (fan_in), the classifier bias from 0.
 */
import { Rng } from "../core/data/rng.ts";
import type { Tensor } from "../core/tensor.ts";
import { Module } from "../core/nn/module.ts";
import { Conv2d, type ConvInit } from "../core/nn/conv2d.ts";
import { BatchNorm2d } from "../core/nn/batchnorm2d.ts";
import { Sequential } from "../core/nn/sequential.ts";
import { Activation, ReLU } from "../core/nn/activation.ts";
import type { Linear } from "../core/nn/linear.ts";
import { relu } from "../core/ops/elementwise.ts";
import { avgPool2d, globalAvgPool, maxPool2d } from "../core/ops/pool.ts";
import { concatChannels } from "../core/ops/structure.ts";
import { ImageClassifier, linearHead, type ModelOptions } from "./classifier.ts";

const INIT: ConvInit = { kaimingNormal: "fan_in" };

class Pool extends Module {
  constructor(readonly kind: "max" | "avg") {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.kind === "max"
      ? maxPool2d(x, { kernel: 3, stride: 2, padding: 1 })
      : avgPool2d(x, { kernel: 2, stride: 2 });
  }
}

export class DenseLayer extends Module {
  readonly norm1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly norm2: BatchNorm2d;
  readonly conv2: Conv2d;

  constructor(inC: number, growth: number, bnSize: number, rng: Rng) {
    super();
    const o = { bias: false, init: INIT, rng };
    this.norm1 = this.child("norm1", new BatchNorm2d(inC));
    this.child("relu1", ReLU());
    this.conv1 = this.child("conv1", new Conv2d(inC, bnSize * growth, 1, o));
    this.norm2 = this.child("norm2", new BatchNorm2d(bnSize * growth));
    this.child("relu2", ReLU());
    this.conv2 = this.child("conv2", new Conv2d(bnSize * growth, growth, 3, { ...o, padding: 1 }));
  }

  /** The new `growth` channels from all previous feature maps (concatenated). */
  forward(x: Tensor): Tensor {
    const h = this.conv1.forward(this.norm1.forward(x, "relu"));
    return this.conv2.forward(this.norm2.forward(h, "relu"));
  }
}

export class DenseBlock extends Module {
  readonly layers: DenseLayer[] = [];

  constructor(numLayers: number, inC: number, growth: number, bnSize: number, rng: Rng) {
    super();
    for (let i = 0; i < numLayers; i++) {
      const layer = new DenseLayer(inC + i * growth, growth, bnSize, rng);
      this.layers.push(this.child(`denselayer${i + 1}`, layer));
    }
  }

  forward(x: Tensor): Tensor {
    const features = [x];
    let all = x;
    for (const layer of this.layers) {
      features.push(layer.forward(all));
      all = concatChannels(features);
    }
    return all;
  }
}

function transition(inC: number, outC: number, rng: Rng): Sequential {
  return new Sequential([
    ["norm", new BatchNorm2d(inC)],
    ["relu", ReLU()],
    ["conv", new Conv2d(inC, outC, 1, { bias: false, init: INIT, rng })],
    ["pool", new Pool("avg")],
  ] as [string, Module][]);
}

export class DenseNet extends ImageClassifier {
  readonly arch = "densenet121";
  readonly headPrefix = "classifier.";
  readonly features: Sequential;
  readonly classifier: Linear;

  constructor(
    cfg: { growth: number; blocks: number[]; initFeatures: number; bnSize: number },
    opts: ModelOptions = {},
  ) {
    super(opts.numClasses ?? 1000);
    const rng = new Rng(opts.seed ?? 0);
    const layers: [string, Module][] = [
      [
        "conv0",
        new Conv2d(3, cfg.initFeatures, 7, {
          stride: 2,
          padding: 3,
          bias: false,
          init: INIT,
          rng,
        }),
      ],
      ["norm0", new BatchNorm2d(cfg.initFeatures)],
      ["relu0", new Activation("relu")],
      ["pool0", new Pool("max")],
    ];
    let c = cfg.initFeatures;
    cfg.blocks.forEach((n, i) => {
      layers.push([`denseblock${i + 1}`, new DenseBlock(n, c, cfg.growth, cfg.bnSize, rng)]);
      c += n * cfg.growth;
      if (i !== cfg.blocks.length - 1) {
        layers.push([`transition${i + 1}`, transition(c, c >> 1, rng)]);
        c >>= 1;
      }
    });
    layers.push(["norm5", new BatchNorm2d(c)]);
    this.features = this.child("features", new Sequential(layers));
    this.classifier = this.child("classifier", linearHead(c, this.numClasses, "zero-bias", rng));
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(globalAvgPool(relu(this.features.forward(x))));
  }
}

/** torchvision.models.densenet121 (7,978,856 parameters with 1000 classes). */
export function densenet121(opts: ModelOptions = {}): DenseNet {
  return new DenseNet({ growth: 32, blocks: [6, 12, 24, 16], initFeatures: 64, bnSize: 4 }, opts);
}
