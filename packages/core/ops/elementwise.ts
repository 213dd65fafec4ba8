/** Differentiable elementwise ops: broadcasting arithmetic, scalar ops and activations. */
import { gpu } from "../../kernels/runtime/gpu.ts";
import * as k from "../../kernels/ops/elementwise.ts";
import { broadcastShapes } from "../../kernels/ops/shape.ts";
import { fromBuffer, type Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";
import { sumTo } from "./reduce.ts";

function f32(t: Tensor, op: string): void {
  if (t.dtype !== "f32") throw new Error(`${op} needs f32 tensors, got ${t.dtype}`);
}

function binary(op: k.BinaryOp, a: Tensor, b: Tensor): Tensor {
  f32(a, op);
  f32(b, op);
  const shape = broadcastShapes([...a.shape], [...b.shape]);
  const out = fromBuffer(
    k.binary(gpu(), op, a.buffer, [...a.shape], b.buffer, [...b.shape]),
    shape,
  );
  return record(out, op, [a, b], (dy) => {
    const needA = a.requiresGrad, needB = b.requiresGrad;
    switch (op) {
      case "add":
        return [needA ? sumTo(dy, a.shape) : null, needB ? sumTo(dy, b.shape) : null];
      case "sub":
        return [needA ? sumTo(dy, a.shape) : null, needB ? sumTo(neg(dy), b.shape, true) : null];
      case "mul":
        return [
          needA ? sumTo(mul(dy, b), a.shape, true) : null,
          needB ? sumTo(mul(dy, a), b.shape, true) : null,
        ];
      case "div": {
        const da = needA ? sumTo(div(dy, b), a.shape, true) : null;
        let db = null;
        if (needB) {
          // d(a/b)/db = -a / b^2 = -(a/b) / b
          const q = div(out, b);
          const t = mul(dy, q);
          q.dispose();
          db = sumTo(neg(t), b.shape, true);
          t.dispose();
        }
        return [da, db];
      }
    }
  });
}

export const add = (a: Tensor, b: Tensor): Tensor => binary("add", a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary("sub", a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary("mul", a, b);
export const div = (a: Tensor, b: Tensor): Tensor => binary("div", a, b);

function unary(u: k.Unary, x: Tensor): Tensor {
  f32(x, u.op);
  const out = fromBuffer(k.unary(gpu(), u, x.buffer, x.size), x.shape);
  return record(
    out,
    u.op,
    [x],
    (dy) => [fromBuffer(k.unaryBackward(gpu(), u, x.buffer, dy.buffer, x.size), x.shape)],
  );
}

export const relu = (x: Tensor): Tensor => unary({ op: "relu" }, x);
export const relu6 = (x: Tensor): Tensor => unary({ op: "relu6" }, x);
export const sigmoid = (x: Tensor): Tensor => unary({ op: "sigmoid" }, x);
export const silu = (x: Tensor): Tensor => unary({ op: "silu" }, x);
export const exp = (x: Tensor): Tensor => unary({ op: "exp" }, x);
export const log = (x: Tensor): Tensor => unary({ op: "log" }, x);
export const neg = (x: Tensor): Tensor => unary({ op: "neg" }, x);
export const square = (x: Tensor): Tensor => unary({ op: "square" }, x);
export const sqrt = (x: Tensor): Tensor => unary({ op: "sqrt" }, x);
export const mulScalar = (x: Tensor, c: number): Tensor => unary({ op: "scale", c }, x);
export const addScalar = (x: Tensor, c: number): Tensor => unary({ op: "shift", c }, x);
export const subScalar = (x: Tensor, c: number): Tensor => addScalar(x, -c);
export const divScalar = (x: Tensor, c: number): Tensor => mulScalar(x, 1 / c);
