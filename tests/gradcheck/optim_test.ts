/** Optimizer kernels against the f64 PyTorch-semantics references over several steps. */
import fc from "fast-check";
import { dataArb, SEED, shapeArb } from "./harness.ts";
import { assertClose } from "../../packages/kernels/ops/testing.ts";
import { adamCpu, sgdCpu } from "../../packages/kernels/ops/optim.ts";
import { numel } from "../../packages/kernels/ops/shape.ts";
import { initGpu } from "../../packages/kernels/runtime/gpu.ts";
import { tensor } from "../../packages/core/tensor.ts";
import { Adam, AdamW } from "../../packages/core/optim/adam.ts";
import { SGD } from "../../packages/core/optim/sgd.ts";

const STEPS = 5;

const problem = shapeArb(1, 3, 9).chain((shape) =>
  fc.record({
    shape: fc.constant(shape),
    w: dataArb(numel(shape)),
    grads: fc.array(dataArb(numel(shape)), { minLength: STEPS, maxLength: STEPS }),
    lr: fc.constantFrom(1e-3, 0.05, 0.3),
    wd: fc.constantFrom(0, 0.01, 0.1),
  })
);

async function run(
  make: (p: ReturnType<typeof tensor>, lr: number, wd: number) => Adam | SGD,
  reference: (w: Float64Array, g: Float64Array, lr: number, wd: number, step: number) => void,
  tol: number,
) {
  await initGpu();
  await fc.assert(
    fc.asyncProperty(problem, async (c) => {
      const p = tensor(Float32Array.from(c.w), c.shape).keep();
      p.requiresGrad = true;
      const opt = make(p, c.lr, c.wd);
      const w = Float64Array.from(c.w);
      let lr: number = c.lr;
      for (let s = 0; s < STEPS; s++) {
        p.grad = tensor(Float32Array.from(c.grads[s]), c.shape).keep();
        opt.step();
        opt.zeroGrad();
        reference(w, c.grads[s], lr, c.wd, s + 1);
        // Schedulers change lr between steps: exercise that too.
        if (s === 2) opt.lr = lr = lr / 2;
      }
      assertClose(await p.read(), w, tol, "parameters after 5 steps");
      opt.dispose();
      p.dispose();
    }),
    { seed: SEED, numRuns: 8 },
  );
}

for (const decoupled of [false, true]) {
  Deno.test(`${decoupled ? "AdamW" : "Adam"} matches the PyTorch update over ${STEPS} steps`, async () => {
    const hp = { beta1: 0.9, beta2: 0.999, eps: 1e-8, decoupled };
    let m: Float64Array, v: Float64Array;
    await run(
      (p, lr, wd) => {
        m = new Float64Array(p.size);
        v = new Float64Array(p.size);
        return decoupled
          ? new AdamW([p], { lr, weightDecay: wd })
          : new Adam([p], { lr, weightDecay: wd });
      },
      (w, g, lr, wd, step) => adamCpu(w, g, m, v, lr, step, { ...hp, weightDecay: wd }),
      2e-5,
    );
  });
}

for (
  const variant of [
    { momentum: 0, nesterov: false, dampening: 0 },
    { momentum: 0.9, nesterov: false, dampening: 0 },
    { momentum: 0.9, nesterov: false, dampening: 0.3 },
    { momentum: 0.8, nesterov: true, dampening: 0 },
  ]
) {
  Deno.test(`SGD ${JSON.stringify(variant)} matches the PyTorch update`, async () => {
    let buf: Float64Array;
    await run(
      (p, lr, wd) => {
        buf = new Float64Array(p.size);
        return new SGD([p], { lr, weightDecay: wd, ...variant });
      },
      (w, g, lr, wd, step) => sgdCpu(w, g, buf, lr, step === 1, { ...variant, weightDecay: wd }),
      2e-5,
    );
  });
}

Deno.test("Adam defaults are PyTorch's", () => {
  const a = new Adam([]);
  const w = new AdamW([]);
  if (a.lr !== 1e-3 || a.hp.beta1 !== 0.9 || a.hp.beta2 !== 0.999 || a.hp.eps !== 1e-8) {
    throw new Error(`Adam defaults ${JSON.stringify(a.hp)} lr ${a.lr}`);
  }
  if (a.hp.weightDecay !== 0 || w.hp.weightDecay !== 0.01 || !w.hp.decoupled) {
    throw new Error("weight decay defaults differ from PyTorch");
  }
});
