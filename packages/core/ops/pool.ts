/** Differentiable pooling over NHWC: max (with argmax), average, and global average. */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as k from "../../kernels/ops/pool.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";

export interface PoolOptions {
  kernel: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
}

function params(x: Tensor, o: PoolOptions): k.Pool2dParams {
  if (x.rank !== 4) throw new Error(`pooling needs NHWC input, got ${x}`);
  const [N, H, W, C] = x.shape;
  return { N, H, W, C, kernel: o.kernel, stride: o.stride, padding: o.padding };
}

export function maxPool2d(x: Tensor, o: PoolOptions): Tensor {
  const p = params(x, o);
  const { OH, OW } = k.pool2dGeometry(p);
  const { y, argmax } = k.maxPool2d(gpu(), x.buffer, p);
  const idx = fromBuffer(argmax, [p.N, OH, OW, p.C], "i32");
  const out = record(fromBuffer(y, [p.N, OH, OW, p.C]), "maxPool2d", [x], (dy) => [
    fromBuffer(k.maxPool2dBackward(gpu(), dy.buffer, idx.buffer, p), x.shape),
  ]);
  if (!out.node) idx.dispose();
  return out;
}

export function avgPool2d(x: Tensor, o: PoolOptions & { countIncludePad?: boolean }): Tensor {
  const p: k.AvgPool2dParams = { ...params(x, o), countIncludePad: o.countIncludePad };
  const { OH, OW } = k.pool2dGeometry(p);
  return record(
    fromBuffer(k.avgPool2d(gpu(), x.buffer, p), [p.N, OH, OW, p.C]),
    "avgPool2d",
    [x],
    (dy) => [
      fromBuffer(k.avgPool2dBackward(gpu(), dy.buffer, p), x.shape),
    ],
  );
}

/** [N, H, W, C] -> [N, C] (adaptive average pool to 1x1, flattened). */
export function globalAvgPool(x: Tensor): Tensor {
  if (x.rank !== 4) throw new Error(`globalAvgPool needs NHWC input, got ${x}`);
  const [N, H, W, C] = x.shape;
  const p = { N, H, W, C };
  return record(
    fromBuffer(k.globalAvgPool(gpu(), x.buffer, p), [N, C]),
    "globalAvgPool",
    [x],
    (dy) => [
      fromBuffer(k.globalAvgPoolBackward(gpu(), dy.buffer, p), x.shape),
    ],
  );
}
