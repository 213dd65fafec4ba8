/** Differentiable structure ops: channel concat (DenseNet) and channel scaling (SE blocks). */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as k from "../../kernels/ops/structure.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";

/** Concatenates NHWC tensors along the channel (last) axis. */
export function concatChannels(inputs: readonly Tensor[]): Tensor {
  const xs = [...inputs]; // the backward must see the inputs of this call only
  if (!xs.length) throw new Error("concatChannels needs at least one tensor");
  const lead = xs[0].shape.slice(0, -1);
  for (const x of xs) {
    if (x.shape.slice(0, -1).join() !== lead.join()) {
      throw new Error(`concatChannels: ${x} does not match [${lead}, *]`);
    }
  }
  const channels = xs.map((x) => x.shape.at(-1)!);
  const rows = xs[0].size / channels[0];
  const outC = channels.reduce((a, b) => a + b, 0);
  const out = fromBuffer(k.concat(gpu(), xs.map((x) => x.buffer), { rows, channels }), [
    ...lead,
    outC,
  ]);
  return record(out, "concatChannels", xs, (dy) => {
    let offset = 0;
    return xs.map((x, i) => {
      const inC = channels[i];
      const grad = x.requiresGrad
        ? fromBuffer(
          k.sliceChannels(gpu(), dy.buffer, { rows, inC: outC, outC: inC, offset }),
          x.shape,
        )
        : null;
      offset += inC;
      return grad;
    });
  });
}

/** x [N, H, W, C] * s [N, C] broadcast over H and W (squeeze-excitation). */
export function channelScale(x: Tensor, s: Tensor): Tensor {
  const [N, H, W, C] = x.shape;
  if (x.rank !== 4 || s.shape.join() !== [N, C].join()) {
    throw new Error(`channelScale needs x [N, H, W, C] and s [N, C], got ${x} and ${s}`);
  }
  const p = { N, H, W, C };
  const out = fromBuffer(k.channelScale(gpu(), x.buffer, s.buffer, p), x.shape);
  return record(out, "channelScale", [x, s], (dy) => {
    const { dx, ds } = k.channelScaleBackward(gpu(), x.buffer, s.buffer, dy.buffer, p);
    return [fromBuffer(dx, x.shape), fromBuffer(ds, s.shape)];
  });
}

/** NCHW data (PyTorch layout) to an NHWC tensor, at the import edge. Not differentiable. */
export function fromNchw(x: Tensor): Tensor {
  const [N, C, H, W] = x.shape;
  return fromBuffer(k.nchwToNhwc(gpu(), x.buffer, { N, C, H, W }), [N, H, W, C]);
}

/** NHWC tensor to NCHW (for export and comparison with PyTorch). Not differentiable. */
export function toNchw(x: Tensor): Tensor {
  const [N, H, W, C] = x.shape;
  return fromBuffer(k.nhwcToNchw(gpu(), x.buffer, { N, H, W, C }), [N, C, H, W]);
}
