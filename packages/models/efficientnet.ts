/**
 * EfficientNet-B0 as torchvision 0.14 defines it (width 1.0, depth 1.0, BatchNorm eps 1e-5):
 * features.0 a 3x3 stride-2 Conv2dNormActivation (SiLU), features.1-7 stages of MBConv blocks
 * (`block` Sequential: optional 1x1 expansion, depthwise conv, squeeze-excitation with
 * max(1, in/4) channels, 1x1 projection without activation; stochastic depth 0.2 scaled
 * linearly over the 16 blocks on the residual branch), features.8 the 1x1 conv to 1280; the
 * classifier is Sequential(Dropout(0.2), Linear). Convolutions start from
 * kaiming_normal_(fan_out) with zero bias, the Linear from U(+-1/sqrt(classes)) with zero bias.
 */
import { mixSeed, Rng } from "../core/data/rng.ts";
import type { Tensor } from "../core/tensor.ts";
import { Module } from "../core/nn/module.ts";
import type { ConvInit } from "../core/nn/conv2d.ts";
import { Sequential } from "../core/nn/sequential.ts";
import { Dropout } from "../core/nn/dropout.ts";
import { SqueezeExcitation } from "../core/nn/squeeze_excitation.ts";
import { StochasticDepth } from "../core/nn/stochastic_depth.ts";
import { add } from "../core/ops/elementwise.ts";
import { globalAvgPool } from "../core/ops/pool.ts";
import { convNormAct, ImageClassifier, linearHead, type ModelOptions } from "./classifier.ts";

const INIT: ConvInit = { kaimingNormal: "fan_out" };

export interface MBConvConfig {
  expand: number;
  kernel: number;
  stride: number;
  inC: number;
  outC: number;
  layers: number;
}

export class MBConv extends Module {
  readonly block: Sequential;
  readonly stochasticDepth: StochasticDepth;
  readonly useResidual: boolean;

  constructor(c: MBConvConfig, sdProb: number, seed: number, rng: Rng) {
    super();
    this.useResidual = c.stride === 1 && c.inC === c.outC;
    const expanded = c.inC * c.expand;
    const o = { init: INIT, rng, activation: "silu" as const };
    this.block = this.child(
      "block",
      new Sequential([
        expanded !== c.inC ? convNormAct(c.inC, expanded, 1, o) : null,
        convNormAct(expanded, expanded, c.kernel, { ...o, stride: c.stride, groups: expanded }),
        new SqueezeExcitation(expanded, Math.max(1, Math.floor(c.inC / 4)), {
          activation: "silu",
          init: INIT,
          rng,
        }),
        convNormAct(expanded, c.outC, 1, { ...o, activation: null }),
      ]),
    );
    this.stochasticDepth = this.child("stochastic_depth", new StochasticDepth(sdProb, { seed }));
  }

  forward(x: Tensor): Tensor {
    const y = this.block.forward(x);
    return this.useResidual ? add(this.stochasticDepth.forward(y), x) : y;
  }
}

const B0: MBConvConfig[] = [
  { expand: 1, kernel: 3, stride: 1, inC: 32, outC: 16, layers: 1 },
  { expand: 6, kernel: 3, stride: 2, inC: 16, outC: 24, layers: 2 },
  { expand: 6, kernel: 5, stride: 2, inC: 24, outC: 40, layers: 2 },
  { expand: 6, kernel: 3, stride: 2, inC: 40, outC: 80, layers: 3 },
  { expand: 6, kernel: 5, stride: 1, inC: 80, outC: 112, layers: 3 },
  { expand: 6, kernel: 5, stride: 2, inC: 112, outC: 192, layers: 4 },
  { expand: 6, kernel: 3, stride: 1, inC: 192, outC: 320, layers: 1 },
];

export class EfficientNet extends ImageClassifier {
  readonly arch = "efficientnet_b0";
  readonly headPrefix = "classifier.1.";
  readonly features: Sequential;
  readonly classifier: Sequential;

  constructor(
    settings: MBConvConfig[],
    opts: ModelOptions & { stochasticDepthProb?: number; lastChannels?: number } = {},
  ) {
    super(opts.numClasses ?? 1000);
    const seed = opts.seed ?? 0;
    const rng = new Rng(seed);
    const sdMax = opts.stochasticDepthProb ?? 0.2;
    const o = { init: INIT, rng, activation: "silu" as const };
    const layers: Module[] = [convNormAct(3, settings[0].inC, 3, { ...o, stride: 2 })];
    const total = settings.reduce((s, c) => s + c.layers, 0);
    let id = 0;
    for (const cfg of settings) {
      const stage: Module[] = [];
      for (let i = 0; i < cfg.layers; i++) {
        const c = i === 0 ? cfg : { ...cfg, inC: cfg.outC, stride: 1 };
        stage.push(new MBConv(c, (sdMax * id) / total, mixSeed(seed, 100 + id), rng));
        id++;
      }
      layers.push(new Sequential(stage));
    }
    const lastIn = settings.at(-1)!.outC;
    const last = opts.lastChannels ?? 4 * lastIn;
    layers.push(convNormAct(lastIn, last, 1, o));
    this.features = this.child("features", new Sequential(layers));
    this.classifier = this.child(
      "classifier",
      new Sequential([
        new Dropout(opts.dropout ?? 0.2, { seed: mixSeed(seed, 1) }),
        linearHead(last, this.numClasses, "uniform-out", rng),
      ]),
    );
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(globalAvgPool(this.features.forward(x)));
  }
}

/** torchvision.models.efficientnet_b0 (5,288,548 parameters with 1000 classes). */
export function efficientnetB0(opts: ModelOptions = {}): EfficientNet {
  return new EfficientNet(B0, opts);
}
