/**
 * nn.Conv2d with PyTorch's names and initialisation. The weight is stored HWIO
 * [KH, KW, Cin/groups, Cout] (the layout the kernels take) but registered under PyTorch's name
 * `weight`; `torchShape` gives its PyTorch (OIHW) shape, and the weight import/export in
 * packages/models/load_weights.ts converts between the two layouts.
 */
import { Rng } from "../data/rng.ts";
import type { Tensor } from "../tensor.ts";
import { conv2d, type Conv2dOptions } from "../ops/conv.ts";
import { Module } from "./module.ts";
import { normal, uniform } from "./init.ts";
import { zeros } from "../tensor.ts";

type Pair = number | [number, number];

/**
 * How the weight is initialised: PyTorch's default (kaiming_uniform_(a=sqrt(5)), bias
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in))), or kaiming_normal_ with gain sqrt(2) (ReLU) over
 * `fan_in` or `fan_out`, which torchvision's models use (their conv biases start at zero).
 */
export type ConvInit = "default" | { kaimingNormal: "fan_in" | "fan_out" };

export interface Conv2dModuleOptions {
  stride?: Pair;
  padding?: Pair | [number, number, number, number] | "same";
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  init?: ConvInit;
  rng?: Rng;
}

const pair = (v: Pair): [number, number] => typeof v === "number" ? [v, v] : v;

export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: Pair;
  readonly padding: Conv2dModuleOptions["padding"];
  readonly dilation: Pair;
  readonly groups: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    opts: Conv2dModuleOptions = {},
  ) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.groups = opts.groups ?? 1;
    const g = this.groups;
    if (inChannels % g !== 0 || outChannels % g !== 0) {
      throw new Error(`Conv2d: ${inChannels} -> ${outChannels} channels not divisible by ${g}`);
    }
    const [KH, KW] = this.kernelSize;
    const rng = opts.rng ?? new Rng(0);
    const init = opts.init ?? "default";
    const receptive = KH * KW;
    const fanIn = (inChannels / g) * receptive, fanOut = outChannels * receptive;
    const shape = [KH, KW, inChannels / g, outChannels];
    if (init === "default") {
      const bound = 1 / Math.sqrt(fanIn);
      this.weight = this.param("weight", uniform(shape, bound, rng));
      this.bias = opts.bias === false
        ? null
        : this.param("bias", uniform([outChannels], bound, rng));
    } else {
      const fan = init.kaimingNormal === "fan_in" ? fanIn : fanOut;
      this.weight = this.param("weight", normal(shape, Math.sqrt(2 / fan), rng));
      this.bias = opts.bias === false ? null : this.param("bias", zeros([outChannels]));
    }
  }

  /** The PyTorch (OIHW) shape of the weight: [Cout, Cin/groups, KH, KW]. */
  get torchWeightShape(): number[] {
    const [KH, KW, I, O] = this.weight.shape;
    return [O, I, KH, KW];
  }

  protected override onTensorReplaced(name: string, t: Tensor): void {
    if (name === "weight") this.weight = t;
    if (name === "bias") this.bias = t;
  }

  /**
   * x [N, H, W, Cin] -> [N, OH, OW, Cout]; `activation`/`residual` fuse when off the tape.
   * `weight`/`bias` replace the module's own for this call (a folded BatchNorm at inference).
   */
  forward(
    x: Tensor,
    extra: Pick<Conv2dOptions, "activation" | "residual"> & { weight?: Tensor; bias?: Tensor } = {},
  ): Tensor {
    const { weight = this.weight, bias = this.bias, ...fused } = extra;
    return conv2d(x, weight, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
      bias,
      ...fused,
    });
  }
}
