/**
 * The layer shapes of the four torchvision architectures (ResNet18, DenseNet121, MobileNetV2,
 * EfficientNet-B0) for a batch and square image size, enumerated from the architectures (not
 * from the model code, so the benchmark does not depend on packages/models). Identical shapes
 * are merged with a count, so per-model kernel time can be estimated as sum(count * time).
 */
import {
  conv2dOutputSize,
  type Conv2dParams,
  conv2dParams,
} from "../packages/kernels/ops/conv2d.ts";
import type { DepthwiseParams } from "../packages/kernels/ops/depthwise.ts";

export type ModelName = "resnet18" | "densenet121" | "mobilenet_v2" | "efficientnet_b0";
export const MODEL_NAMES: readonly ModelName[] = [
  "resnet18",
  "densenet121",
  "mobilenet_v2",
  "efficientnet_b0",
];

export interface Nhwc {
  N: number;
  H: number;
  W: number;
  C: number;
}

export type LayerOp =
  | { kind: "conv"; p: Conv2dParams }
  | { kind: "depthwise"; p: DepthwiseParams }
  | { kind: "bn"; p: Nhwc }
  | { kind: "maxpool"; p: Nhwc & { k: number; s: number; pad: number } }
  | { kind: "avgpool"; p: Nhwc & { k: number; s: number; pad: number } }
  | { kind: "gap"; p: Nhwc }
  | { kind: "linear"; p: { M: number; N: number; K: number } };

export interface Layer {
  model: ModelName;
  /** First layer name with this shape, e.g. "layer2.0.conv1". */
  name: string;
  op: LayerOp;
  /** How many layers of the model have exactly this shape. */
  count: number;
  /** Unique key of the shape (same key = same kernel work). */
  key: string;
}

/** A compact, unique description of an op's shape. */
export function shapeKey(op: LayerOp): string {
  switch (op.kind) {
    case "conv": {
      const p = op.p;
      return `conv N${p.N} ${p.H}x${p.W}x${p.Cin}->${p.Cout} k${p.KH}x${p.KW} s${p.strideH} ` +
        `p${p.padTop},${p.padBottom},${p.padLeft},${p.padRight}` +
        (p.groups > 1 ? ` g${p.groups}` : "");
    }
    case "depthwise": {
      const p = op.p;
      return `dw N${p.N} ${p.H}x${p.W}x${p.C} k${p.KH}x${p.KW} s${p.strideH} ` +
        `p${p.padTop},${p.padBottom},${p.padLeft},${p.padRight}`;
    }
    case "bn":
    case "gap":
      return `${op.kind} N${op.p.N} ${op.p.H}x${op.p.W}x${op.p.C}`;
    case "maxpool":
    case "avgpool":
      return `${op.kind} N${op.p.N} ${op.p.H}x${op.p.W}x${op.p.C} k${op.p.k} s${op.p.s} p${op.p.pad}`;
    case "linear":
      return `linear ${op.p.M}x${op.p.K}->${op.p.N}`;
  }
}

/** Collects layers while tracking the activation size. */
class Builder {
  layers = new Map<string, Layer>();
  H: number;
  W: number;
  constructor(readonly model: ModelName, readonly N: number, size: number) {
    this.H = size;
    this.W = size;
  }
  add(name: string, op: LayerOp): void {
    const key = shapeKey(op);
    const l = this.layers.get(key);
    if (l) l.count++;
    else this.layers.set(key, { model: this.model, name, op, count: 1, key });
  }
  /** Conv (PyTorch padding (k-1)/2 unless given) + its BatchNorm; updates H, W. */
  conv(name: string, cin: number, cout: number, k: number, s = 1, pad = (k - 1) >> 1): void {
    const p = conv2dParams({
      N: this.N,
      H: this.H,
      W: this.W,
      Cin: cin,
      Cout: cout,
      KH: k,
      KW: k,
      strideH: s,
      strideW: s,
      padTop: pad,
      padBottom: pad,
      padLeft: pad,
      padRight: pad,
    });
    this.add(name, { kind: "conv", p });
    const { OH, OW } = conv2dOutputSize(p);
    this.H = OH;
    this.W = OW;
  }
  bn(name: string, c: number): void {
    this.add(name, { kind: "bn", p: { N: this.N, H: this.H, W: this.W, C: c } });
  }
  convBn(name: string, cin: number, cout: number, k: number, s = 1): void {
    this.conv(`${name}.conv`, cin, cout, k, s);
    this.bn(`${name}.bn`, cout);
  }
  depthwise(name: string, c: number, k: number, s: number): void {
    const pad = (k - 1) >> 1;
    const p: DepthwiseParams = {
      N: this.N,
      H: this.H,
      W: this.W,
      C: c,
      KH: k,
      KW: k,
      strideH: s,
      strideW: s,
      padTop: pad,
      padBottom: pad,
      padLeft: pad,
      padRight: pad,
    };
    this.add(name, { kind: "depthwise", p });
    this.H = Math.floor((this.H + 2 * pad - k) / s) + 1;
    this.W = Math.floor((this.W + 2 * pad - k) / s) + 1;
    this.bn(`${name}.bn`, c);
  }
  pool(kind: "maxpool" | "avgpool", name: string, c: number, k: number, s: number, pad: number) {
    this.add(name, { kind, p: { N: this.N, H: this.H, W: this.W, C: c, k, s, pad } });
    this.H = Math.floor((this.H + 2 * pad - k) / s) + 1;
    this.W = Math.floor((this.W + 2 * pad - k) / s) + 1;
  }
  head(c: number, classes: number): void {
    this.add("avgpool", { kind: "gap", p: { N: this.N, H: this.H, W: this.W, C: c } });
    this.add("fc", { kind: "linear", p: { M: this.N, N: classes, K: c } });
  }
  /** A 1x1 conv on a 1x1 map (squeeze-excitation): a tiny GEMM. */
  se(name: string, hidden: number, squeeze: number): void {
    const [h, w] = [this.H, this.W];
    this.add(`${name}.avgpool`, { kind: "gap", p: { N: this.N, H: h, W: w, C: hidden } });
    this.H = this.W = 1;
    this.conv(`${name}.fc1`, hidden, squeeze, 1);
    this.conv(`${name}.fc2`, squeeze, hidden, 1);
    [this.H, this.W] = [h, w];
  }
}

function resnet18(b: Builder, classes: number): void {
  b.convBn("conv1", 3, 64, 7, 2);
  b.pool("maxpool", "maxpool", 64, 3, 2, 1);
  let cin = 64;
  [64, 128, 256, 512].forEach((c, li) => {
    for (let blk = 0; blk < 2; blk++) {
      const s = li > 0 && blk === 0 ? 2 : 1;
      const name = `layer${li + 1}.${blk}`;
      const [h, w] = [b.H, b.W];
      b.conv(`${name}.conv1`, cin, c, 3, s);
      b.bn(`${name}.bn1`, c);
      b.conv(`${name}.conv2`, c, c, 3, 1);
      b.bn(`${name}.bn2`, c);
      if (s !== 1 || cin !== c) {
        const [oh, ow] = [b.H, b.W];
        [b.H, b.W] = [h, w];
        b.conv(`${name}.downsample.0`, cin, c, 1, s, 0);
        b.bn(`${name}.downsample.1`, c);
        [b.H, b.W] = [oh, ow];
      }
      cin = c;
    }
  });
  b.head(512, classes);
}

function densenet121(b: Builder, classes: number): void {
  b.convBn("features.conv0", 3, 64, 7, 2);
  b.pool("maxpool", "features.pool0", 64, 3, 2, 1);
  let c = 64;
  [6, 12, 24, 16].forEach((layers, bi) => {
    for (let l = 0; l < layers; l++) {
      const name = `features.denseblock${bi + 1}.denselayer${l + 1}`;
      b.bn(`${name}.norm1`, c + 32 * l);
      b.conv(`${name}.conv1`, c + 32 * l, 128, 1, 1);
      b.bn(`${name}.norm2`, 128);
      b.conv(`${name}.conv2`, 128, 32, 3, 1);
    }
    c += 32 * layers;
    if (bi < 3) {
      const name = `features.transition${bi + 1}`;
      b.bn(`${name}.norm`, c);
      b.conv(`${name}.conv`, c, c / 2, 1, 1);
      c /= 2;
      b.pool("avgpool", `${name}.pool`, c, 2, 2, 0);
    }
  });
  b.bn("features.norm5", c);
  b.head(c, classes);
}

function mobilenetV2(b: Builder, classes: number): void {
  b.convBn("features.0", 3, 32, 3, 2);
  let cin = 32, idx = 1;
  const settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [
    6,
    160,
    3,
    2,
  ], [6, 320, 1, 1]];
  for (const [t, c, n, s] of settings) {
    for (let i = 0; i < n; i++) {
      const name = `features.${idx++}`;
      const hidden = cin * t;
      if (t !== 1) b.convBn(`${name}.expand`, cin, hidden, 1);
      b.depthwise(`${name}.dw`, hidden, 3, i === 0 ? s : 1);
      b.convBn(`${name}.project`, hidden, c, 1);
      cin = c;
    }
  }
  b.convBn(`features.${idx}`, cin, 1280, 1);
  b.head(1280, classes);
}

function efficientnetB0(b: Builder, classes: number): void {
  b.convBn("features.0", 3, 32, 3, 2);
  // expand ratio, kernel, stride, in, out, layers (torchvision _efficientnet_conf, B0)
  const stages = [
    [1, 3, 1, 32, 16, 1],
    [6, 3, 2, 16, 24, 2],
    [6, 5, 2, 24, 40, 2],
    [6, 3, 2, 40, 80, 3],
    [6, 5, 1, 80, 112, 3],
    [6, 5, 2, 112, 192, 4],
    [6, 3, 1, 192, 320, 1],
  ];
  stages.forEach(([e, k, s, cin0, cout, n], si) => {
    for (let i = 0; i < n; i++) {
      const name = `features.${si + 1}.${i}`;
      const cin = i === 0 ? cin0 : cout;
      const hidden = cin * e;
      if (e !== 1) b.convBn(`${name}.expand`, cin, hidden, 1);
      b.depthwise(`${name}.dw`, hidden, k, i === 0 ? s : 1);
      b.se(`${name}.se`, hidden, Math.max(1, Math.floor(cin / 4)));
      b.convBn(`${name}.project`, hidden, cout, 1);
    }
  });
  b.convBn("features.8", 320, 1280, 1);
  b.head(1280, classes);
}

const BUILDERS: Record<ModelName, (b: Builder, classes: number) => void> = {
  resnet18,
  densenet121,
  mobilenet_v2: mobilenetV2,
  efficientnet_b0: efficientnetB0,
};

/** The distinct layer shapes of `model` at this batch and image size, in network order. */
export function modelLayers(
  model: ModelName,
  batch: number,
  size: number,
  classes = 7,
): Layer[] {
  const b = new Builder(model, batch, size);
  BUILDERS[model](b, classes);
  return [...b.layers.values()];
}

/** Forward FLOPs of one layer shape (a multiply-add counts 2). */
export function forwardFlops(op: LayerOp): number {
  switch (op.kind) {
    case "conv": {
      const p = op.p, { OH, OW } = conv2dOutputSize(p);
      return 2 * p.N * OH * OW * p.Cout * p.KH * p.KW * (p.Cin / p.groups);
    }
    case "depthwise": {
      const p = op.p;
      const OH = Math.floor((p.H + p.padTop + p.padBottom - p.KH) / p.strideH) + 1;
      const OW = Math.floor((p.W + p.padLeft + p.padRight - p.KW) / p.strideW) + 1;
      return 2 * p.N * OH * OW * p.C * p.KH * p.KW;
    }
    case "linear":
      return 2 * op.p.M * op.p.N * op.p.K;
    case "bn":
      return 8 * op.p.N * op.p.H * op.p.W * op.p.C;
    case "gap":
      return op.p.N * op.p.H * op.p.W * op.p.C;
    case "maxpool":
    case "avgpool": {
      const p = op.p;
      const OH = Math.floor((p.H + 2 * p.pad - p.k) / p.s) + 1;
      const OW = Math.floor((p.W + 2 * p.pad - p.k) / p.s) + 1;
      return p.N * OH * OW * p.C * p.k * p.k;
    }
  }
}

/** Sum of count * forward FLOPs over a model's layers. */
export function modelForwardFlops(layers: readonly Layer[]): number {
  return layers.reduce((s, l) => s + l.count * forwardFlops(l.op), 0);
}
