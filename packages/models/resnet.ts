/**
 * ResNet-18 as torchvision 0.14 defines it (BasicBlock, [2, 2, 2, 2]): same module names, so
 * the same state_dict keys; convolutions start from kaiming_normal_(fan_out, relu), BatchNorm
 * from (1, 0), the fc layer from PyTorch's Linear default.
 */
import { Rng } from "../core/data/rng.ts";
import type { Tensor } from "../core/tensor.ts";
import { Module } from "../core/nn/module.ts";
import { Conv2d, type ConvInit } from "../core/nn/conv2d.ts";
import { BatchNorm2d } from "../core/nn/batchnorm2d.ts";
import { Sequential } from "../core/nn/sequential.ts";
import type { Linear } from "../core/nn/linear.ts";
import { add, relu } from "../core/ops/elementwise.ts";
import { globalAvgPool, maxPool2d } from "../core/ops/pool.ts";
import { ImageClassifier, linearHead, type ModelOptions } from "./classifier.ts";

const INIT: ConvInit = { kaimingNormal: "fan_out" };

export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inC: number, outC: number, stride: number, rng: Rng) {
    super();
    const o = { bias: false, init: INIT, rng };
    this.conv1 = this.child("conv1", new Conv2d(inC, outC, 3, { ...o, stride, padding: 1 }));
    this.bn1 = this.child("bn1", new BatchNorm2d(outC));
    this.conv2 = this.child("conv2", new Conv2d(outC, outC, 3, { ...o, padding: 1 }));
    this.bn2 = this.child("bn2", new BatchNorm2d(outC));
    this.downsample = stride !== 1 || inC !== outC
      ? this.child(
        "downsample",
        new Sequential([new Conv2d(inC, outC, 1, { ...o, stride }), new BatchNorm2d(outC)]),
      )
      : null;
  }

  forward(x: Tensor): Tensor {
    const h = this.bn1.forward(this.conv1.forward(x), "relu");
    const out = this.bn2.forward(this.conv2.forward(h));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return relu(add(out, identity));
  }
}

export class ResNet extends ImageClassifier {
  readonly arch = "resnet18";
  readonly headPrefix = "fc.";
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layers: Sequential[];
  readonly fc: Linear;

  constructor(layers: [number, number, number, number], opts: ModelOptions = {}) {
    super(opts.numClasses ?? 1000);
    const rng = new Rng(opts.seed ?? 0);
    this.conv1 = this.child(
      "conv1",
      new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false, init: INIT, rng }),
    );
    this.bn1 = this.child("bn1", new BatchNorm2d(64));
    let inC = 64;
    this.layers = [64, 128, 256, 512].map((c, i) => {
      const blocks: Module[] = [];
      for (let b = 0; b < layers[i]; b++) {
        blocks.push(new BasicBlock(inC, c, b === 0 && i > 0 ? 2 : 1, rng));
        inC = c;
      }
      return this.child(`layer${i + 1}`, new Sequential(blocks));
    });
    this.fc = this.child("fc", linearHead(512, this.numClasses, "default", rng));
  }

  forward(x: Tensor): Tensor {
    let h = this.bn1.forward(this.conv1.forward(x), "relu");
    h = maxPool2d(h, { kernel: 3, stride: 2, padding: 1 });
    for (const layer of this.layers) h = layer.forward(h);
    return this.fc.forward(globalAvgPool(h));
  }
}

/** torchvision.models.resnet18 (11,689,512 parameters with 1000 classes). */
export function resnet18(opts: ModelOptions = {}): ResNet {
  return new ResNet([2, 2, 2, 2], opts);
}
