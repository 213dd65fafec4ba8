/**
 * Differentiable 2-D convolution on NHWC activations with HWIO weights [KH, KW, Cin/g, Cout].
 * Depthwise convolutions (groups = Cin = Cout) take the dedicated depthwise kernels, the rest
 * the implicit-GEMM kernels. Outside the tape (inference) the bias, residual and activation
 * run fused in the kernel's epilogue; on the tape they are recorded as separate ops.
 */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as cv from "../../kernels/ops/conv2d.ts";
import * as dw from "../../kernels/ops/depthwise.ts";
import type { Activation } from "../../kernels/ops/gemm.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { isGradEnabled, record } from "../autograd.ts";
import { add, relu, relu6, silu } from "./elementwise.ts";

export interface Conv2dOptions {
  stride?: number | [number, number];
  /** Symmetric padding, [top, bottom, left, right], or TensorFlow's "same". */
  padding?: number | [number, number] | [number, number, number, number] | "same";
  dilation?: number | [number, number];
  groups?: number;
  bias?: Tensor | null;
  /** Added to the convolution's output before the activation (a residual branch). */
  residual?: Tensor;
  activation?: Activation;
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v;

/** Kernel params for x [N, H, W, Cin] and w [KH, KW, Cin/g, Cout]. */
export function convParams(x: Tensor, w: Tensor, o: Conv2dOptions): cv.Conv2dParams {
  if (x.rank !== 4 || w.rank !== 4) throw new Error(`conv2d needs NHWC x and HWIO w: ${x}, ${w}`);
  const [N, H, W, Cin] = x.shape, [KH, KW, CinG, Cout] = w.shape;
  const groups = o.groups ?? 1;
  if (CinG * groups !== Cin) {
    throw new Error(`conv2d: weight ${w} expects ${CinG * groups} input channels, x has ${Cin}`);
  }
  const [strideH, strideW] = pair(o.stride, 1), [dilationH, dilationW] = pair(o.dilation, 1);
  let pads: [number, number, number, number];
  if (o.padding === "same") {
    // TensorFlow SAME: output = ceil(in / stride); the odd pixel of padding goes after.
    const padFor = (size: number, k: number, s: number, d: number) => {
      const total = Math.max((Math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    };
    const [t, b] = padFor(H, KH, strideH, dilationH), [l, r] = padFor(W, KW, strideW, dilationW);
    pads = [t, b, l, r];
  } else if (Array.isArray(o.padding) && o.padding.length === 4) {
    pads = o.padding;
  } else {
    const [ph, pw] = pair(o.padding as number | [number, number] | undefined, 0);
    pads = [ph, ph, pw, pw];
  }
  const [padTop, padBottom, padLeft, padRight] = pads;
  return {
    N,
    H,
    W,
    Cin,
    Cout,
    KH,
    KW,
    strideH,
    strideW,
    padTop,
    padBottom,
    padLeft,
    padRight,
    dilationH,
    dilationW,
    groups,
  };
}

function isDepthwise(p: cv.Conv2dParams): boolean {
  return p.groups > 1 && p.groups === p.Cin && p.Cout === p.Cin && p.dilationH === 1 &&
    p.dilationW === 1;
}

function dwParams(p: cv.Conv2dParams): dw.DepthwiseParams {
  const { N, H, W, KH, KW, strideH, strideW, padTop, padBottom, padLeft, padRight } = p;
  return { N, H, W, C: p.Cin, KH, KW, strideH, strideW, padTop, padBottom, padLeft, padRight };
}

const ACTIVATIONS = { relu, relu6, silu } as const;

export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const p = convParams(x, w, opts);
  const { OH, OW } = cv.conv2dOutputSize(p);
  const shape = [p.N, OH, OW, p.Cout];
  const bias = opts.bias ?? null;
  const act = opts.activation ?? "none";
  const depthwise = isDepthwise(p);
  const onTape = isGradEnabled() &&
    [x, w, bias, opts.residual].some((t) => t?.requiresGrad);
  if (!onTape) {
    // Inference: everything in one launch.
    const buf = depthwise
      ? (opts.residual ? null : dw.depthwise(gpu(), x.buffer, w.buffer, dwParams(p), {
        bias: bias?.buffer,
        activation: act,
      }))
      : cv.conv2d(gpu(), x.buffer, w.buffer, p, {
        bias: bias?.buffer,
        residual: opts.residual?.buffer,
        activation: act,
      });
    if (buf) return fromBuffer(buf, shape);
  }
  const g = gpu();
  const yBuf = depthwise
    ? dw.depthwise(g, x.buffer, w.buffer, dwParams(p), { bias: bias?.buffer })
    : cv.conv2d(g, x.buffer, w.buffer, p, { bias: bias?.buffer });
  const inputs = bias ? [x, w, bias] : [x, w];
  let y = record(fromBuffer(yBuf, shape), "conv2d", inputs, (dy) => {
    const q = dwParams(p);
    const dx = !x.requiresGrad
      ? null
      : depthwise
      ? dw.depthwiseBackwardInput(g, dy.buffer, w.buffer, q)
      : cv.conv2dBackwardInput(g, dy.buffer, w.buffer, p);
    const dW = !w.requiresGrad
      ? null
      : depthwise
      ? dw.depthwiseBackwardWeight(g, x.buffer, dy.buffer, q)
      : cv.conv2dBackwardWeight(g, x.buffer, dy.buffer, p);
    const db = !bias?.requiresGrad
      ? null
      : depthwise
      ? dw.depthwiseBackwardBias(g, dy.buffer, q)
      : cv.conv2dBackwardBias(g, dy.buffer, p);
    return [
      dx && fromBuffer(dx, x.shape),
      dW && fromBuffer(dW, w.shape),
      ...(bias ? [db && fromBuffer(db, bias.shape)] : []),
    ];
  });
  if (opts.residual) y = add(y, opts.residual);
  return act === "none" ? y : ACTIVATIONS[act](y);
}
