/**
 * TensorFlow.js's WebGPU backend on OUR device, in the same Deno process: the stock factory
 * registered by @tensorflow/tfjs-backend-webgpu requests its own adapter and device; we replace
 * it with one that wraps `g.device`, so both libraries run on the same adapter and queue and the
 * same timestamp marks time them. Backprop kernels are called by name with the inputs and
 * attributes that tfjs-core's gradient functions pass them (Conv2D_grad.ts,
 * DepthwiseConv2dNative_grad.ts, MaxPool_grad.ts, AvgPool_grad.ts): tfjs-core's node bundle
 * does not register gradients, and `register_all_gradients.js` cannot be loaded under Deno
 * (its ESM imports have no file extensions).
 */
import * as tf from "@tensorflow/tfjs-core";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import type { Gpu } from "../packages/kernels/runtime/gpu.ts";

export { tf };

export interface TfjsWebgpu {
  backend: WebGPUBackend;
  /** Submits what tfjs recorded (it batches commands until a readback or 15 programs). */
  submit: () => void;
}

/** Initialises tfjs-webgpu on `g.device`; returns the reason when it cannot. */
export async function initTfjsWebgpu(g: Gpu): Promise<TfjsWebgpu | { error: string }> {
  try {
    let backend: WebGPUBackend | null = null;
    if (tf.findBackend("webgpu") || tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
    tf.registerBackend("webgpu", () => {
      // No adapter info: it only tunes for Intel GPUs (adapter_info.ts).
      backend = new WebGPUBackend(g.device, undefined as unknown as GPUAdapterInfo);
      return backend;
    }, 100);
    if (!(await tf.setBackend("webgpu"))) {
      return { error: "tf.setBackend('webgpu') returned false" };
    }
    await tf.ready();
    const b = backend as WebGPUBackend | null;
    if (!b) return { error: "the webgpu backend factory was not called" };
    // Smoke test: a small matmul must give the right answer on this adapter.
    const got = await tf.tidy(() => tf.matMul(tf.ones([8, 8]), tf.ones([8, 8]))).data();
    if (got[0] !== 8) return { error: `tfjs-webgpu smoke test gave ${got[0]} instead of 8` };
    // submitQueue() alone would finish the encoder with tfjs's compute pass still open.
    const inner = b as unknown as { commandEncoder: GPUCommandEncoder | null };
    const submit = () => {
      b.endComputePassEncoder();
      if (inner.commandEncoder) b.submitQueue();
    };
    return { backend: b, submit };
  } catch (e) {
    return { error: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

/** A tfjs tensor copied from one of our GPU buffers (same values, no CPU round trip). */
export function fromOurs(buffer: GPUBuffer, shape: number[]): tf.Tensor {
  return tf.tensor({ buffer, zeroCopy: false }, shape, "float32");
}

export type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

/** tfjs explicit NHWC padding. */
export function explicitPad(top: number, bottom: number, left: number, right: number): Pad4 {
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

export function conv2dBackpropInput(
  dy: tf.Tensor,
  filter: tf.Tensor,
  inputShape: number[],
  strides: [number, number],
  pad: Pad4,
): tf.Tensor {
  return tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, {
    strides,
    pad,
    dataFormat: "NHWC",
    dimRoundingMode: undefined,
    inputShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

export function conv2dBackpropFilter(
  x: tf.Tensor,
  dy: tf.Tensor,
  filterShape: number[],
  strides: [number, number],
  pad: Pad4,
): tf.Tensor {
  return tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
    strides,
    pad,
    dataFormat: "NHWC",
    dimRoundingMode: undefined,
    filterShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

export function depthwiseBackpropInput(
  dy: tf.Tensor,
  filter: tf.Tensor,
  inputShape: number[],
  strides: [number, number],
  pad: Pad4,
): tf.Tensor {
  return tf.engine().runKernel("DepthwiseConv2dNativeBackpropInput", { dy, filter }, {
    strides,
    pad,
    dimRoundingMode: undefined,
    dilations: [1, 1],
    inputShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

export function depthwiseBackpropFilter(
  x: tf.Tensor,
  dy: tf.Tensor,
  filterShape: number[],
  strides: [number, number],
  pad: Pad4,
): tf.Tensor {
  return tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", { x, dy }, {
    strides,
    pad,
    dimRoundingMode: undefined,
    dilations: [1, 1],
    filterShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

export function maxPoolGrad(
  dy: tf.Tensor,
  input: tf.Tensor,
  output: tf.Tensor,
  k: number,
  s: number,
  pad: number,
): tf.Tensor {
  return tf.engine().runKernel("MaxPoolGrad", { dy, input, output }, {
    filterSize: [k, k],
    strides: [s, s],
    pad,
    dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

export function avgPoolGrad(
  dy: tf.Tensor,
  input: tf.Tensor,
  k: number,
  s: number,
  pad: number,
): tf.Tensor {
  return tf.engine().runKernel("AvgPoolGrad", { dy, input }, {
    filterSize: [k, k],
    strides: [s, s],
    pad,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** Training-mode batch norm forward composed from tfjs ops (tf.moments + tf.batchNorm). */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  eps = 1e-5,
): tf.Tensor {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return tf.batchNorm(x, mean, variance, beta, gamma, eps);
}

/**
 * Training-mode batch norm input/scale/shift gradients from tfjs ops (the analytic formula;
 * tfjs has no fused BN backward kernel: FusedBatchNorm_grad.ts composes ops too).
 */
export function batchNormBackward(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  gamma: tf.Tensor1D,
  eps = 1e-5,
): tf.Tensor[] {
  const R = x.shape[0] * x.shape[1] * x.shape[2];
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const invstd = tf.rsqrt(tf.add(variance, eps));
  const xhat = tf.mul(tf.sub(x, mean), invstd);
  const dbeta = tf.sum(dy, [0, 1, 2]);
  const dgamma = tf.sum(tf.mul(dy, xhat), [0, 1, 2]);
  const dx = tf.mul(
    tf.mul(gamma, tf.div(invstd, R)),
    tf.sub(tf.sub(tf.mul(dy, R), dbeta), tf.mul(xhat, dgamma)),
  );
  return [dx, dgamma, dbeta];
}
