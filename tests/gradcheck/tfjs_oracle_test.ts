/**
 * (c) An independent oracle: TensorFlow.js's CPU backend computes the same functions and
 * their gradients, and our GPU autodiff must agree. This checks composite expressions, so
 * the tape's plumbing (broadcast reductions, accumulation into shared inputs) is tested
 * against code we did not write.
 */
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { dataArb, SEED } from "./harness.ts";
import { assertClose } from "../../packages/kernels/ops/testing.ts";
import { initGpu } from "../../packages/kernels/runtime/gpu.ts";
import { tensor } from "../../packages/core/tensor.ts";
import { tidy } from "../../packages/core/scope.ts";
import { backward } from "../../packages/core/autograd.ts";
import * as ops from "../../packages/core/ops/elementwise.ts";
import { mean, sum } from "../../packages/core/ops/reduce.ts";
import { matmul } from "../../packages/core/ops/matmul.ts";
import { crossEntropy, logSoftmax } from "../../packages/core/ops/softmax.ts";

await tf.setBackend("cpu");

const dims = fc.record({
  n: fc.integer({ min: 1, max: 9 }),
  k: fc.integer({ min: 1, max: 11 }),
  c: fc.integer({ min: 2, max: 7 }),
});

Deno.test("tfjs oracle: MLP-like expression (matmul, bias broadcast, relu, sigmoid, div, mean)", async () => {
  await initGpu();
  const cases = dims.chain((d) =>
    fc.record({
      d: fc.constant(d),
      x: dataArb(d.n * d.k),
      w: dataArb(d.c * d.k),
      b: dataArb(d.c),
      s: dataArb(d.c, 0.5, 2),
    })
  );
  await fc.assert(
    fc.asyncProperty(cases, async ({ d, x, w, b, s }) => {
      // f(x, w, b, s) = mean(relu(x w^T + b) / s) + sum(sigmoid(x w^T) * x w^T) / n
      const f32 = (a: Float64Array) => Float32Array.from(a);
      const [tx, tw, tb, ts] = [
        tf.tensor2d(f32(x), [d.n, d.k]),
        tf.tensor2d(f32(w), [d.c, d.k]),
        tf.tensor1d(f32(b)),
        tf.tensor1d(f32(s)),
      ];
      const tfFn = (X: tf.Tensor, W: tf.Tensor, B: tf.Tensor, S: tf.Tensor) => {
        const z = tf.matMul(X, W, false, true);
        return tf.add(
          tf.mean(tf.div(tf.relu(tf.add(z, B)), S)),
          tf.div(tf.sum(tf.mul(tf.sigmoid(z), z)), d.n),
        ) as tf.Scalar;
      };
      const grads = tf.grads((X, W, B, S) => tfFn(X, W, B, S))([tx, tw, tb, ts]);
      const expectedValue = await tfFn(tx, tw, tb, ts).data();
      const expected = await Promise.all(grads.map((g) => g.data()));

      const ours = [
        tensor(f32(x), [d.n, d.k]),
        tensor(f32(w), [d.c, d.k]),
        tensor(f32(b)),
        tensor(f32(s)),
      ];
      for (const t of ours) t.requiresGrad = true;
      const value = tidy(() => {
        const [X, W, B, S] = ours;
        const z = matmul(X, W, { transB: true });
        const v = ops.add(
          mean(ops.div(ops.relu(ops.add(z, B)), S)),
          ops.divScalar(sum(ops.mul(ops.sigmoid(z), z)), d.n),
        );
        backward(v);
        return v;
      });
      assertClose(await value.read(), expectedValue, 1e-5, "value");
      for (let i = 0; i < 4; i++) {
        assertClose(await ours[i].grad!.read(), expected[i], 1e-4, `grad #${i}`);
      }
      tf.dispose([tx, tw, tb, ts, ...grads]);
      value.dispose();
      for (const t of ours) {
        t.grad!.dispose();
        t.dispose();
      }
    }),
    { seed: SEED, numRuns: 10 },
  );
});

Deno.test("tfjs oracle: log-softmax and label-smoothed softmax cross-entropy", async () => {
  await initGpu();
  const cases = dims.chain((d) =>
    fc.record({
      d: fc.constant(d),
      x: dataArb(d.n * d.c, -4, 4),
      y: fc.array(fc.integer({ min: 0, max: d.c - 1 }), { minLength: d.n, maxLength: d.n }),
      eps: fc.constantFrom(0, 0.1, 0.3),
    })
  );
  await fc.assert(
    fc.asyncProperty(cases, async ({ d, x, y, eps }) => {
      const tx = tf.tensor2d(Float32Array.from(x), [d.n, d.c]);
      const onehot = tf.oneHot(tf.tensor1d(y, "int32"), d.c);
      const lossFn = (X: tf.Tensor) =>
        tf.losses.softmaxCrossEntropy(onehot, X, undefined, eps, tf.Reduction.MEAN) as tf.Scalar;
      const lsFn = (X: tf.Tensor) =>
        tf.sum(tf.mul(tf.logSoftmax(X), tf.range(1, d.c + 1))) as tf.Scalar;
      const [lossGrad] = tf.grads(lossFn)([tx]);
      const [lsGrad] = tf.grads(lsFn)([tx]);
      const expected = {
        loss: await lossFn(tx).data(),
        lossGrad: await lossGrad.data(),
        ls: await lsFn(tx).data(),
        lsGrad: await lsGrad.data(),
      };

      const X = tensor(Float32Array.from(x), [d.n, d.c]);
      X.requiresGrad = true;
      const labels = tensor(Int32Array.from(y));
      const loss = tidy(() => {
        const l = crossEntropy(X, labels, { labelSmoothing: eps });
        backward(l);
        return l;
      });
      assertClose(await loss.read(), expected.loss, 1e-5, "cross-entropy");
      assertClose(await X.grad!.read(), expected.lossGrad, 1e-4, "cross-entropy grad");
      X.grad!.dispose();
      X.grad = null;
      const weights = tensor(Float32Array.from({ length: d.c }, (_, i) => i + 1));
      const ls = tidy(() => {
        const v = sum(ops.mul(logSoftmax(X), weights));
        backward(v);
        return v;
      });
      assertClose(await ls.read(), expected.ls, 1e-5, "log-softmax");
      assertClose(await X.grad!.read(), expected.lsGrad, 1e-4, "log-softmax grad");
      tf.dispose([tx, onehot, lossGrad, lsGrad]);
      for (const t of [X.grad!, X, labels, loss, weights, ls]) t.dispose();
    }),
    { seed: SEED, numRuns: 10 },
  );
});
