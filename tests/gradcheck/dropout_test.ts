import fc from "fast-check";
import { dataArb, gradcheck, shapeArb } from "./harness.ts";
import { dropoutCpu } from "../../packages/kernels/ops/dropout.ts";
import { numel } from "../../packages/kernels/ops/shape.ts";
import { dropout } from "../../packages/core/ops/dropout.ts";
import { initGpu } from "../../packages/kernels/runtime/gpu.ts";
import { tensor } from "../../packages/core/tensor.ts";

Deno.test("gradcheck seeded dropout (mask identical on GPU and CPU, forward and backward)", async () => {
  const cases = shapeArb(1, 3, 20).chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      data: dataArb(numel(shape)),
      p: fc.constantFrom(0, 0.1, 0.5, 0.9),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    })
  );
  await gradcheck({
    name: "dropout",
    cases,
    inputs: (c) => [{ shape: c.shape, data: c.data }],
    cpu: (c, [x]) => dropoutCpu(x, c.p, c.seed),
    cpuVjp: (c, [_x], dy) => [dropoutCpu(dy, c.p, c.seed)],
    gpu: (c, [x]) => dropout(x, c.p, c.seed),
  });
});

Deno.test("dropout keeps about 1-p of the elements and different seeds give different masks", async () => {
  await initGpu();
  const n = 20000, p = 0.3;
  const x = tensor(new Float32Array(n).fill(1));
  const a = await dropout(x, p, 1).read();
  const b = await dropout(x, p, 2).read();
  const kept = a.filter((v) => v !== 0).length / n;
  if (Math.abs(kept - (1 - p)) > 0.02) throw new Error(`kept ${kept}, expected ${1 - p}`);
  if (a.some((v) => v !== 0 && Math.abs(v - 1 / (1 - p)) > 1e-6)) throw new Error("bad scale");
  const same = a.filter((v, i) => v === b[i]).length / n;
  if (same > 0.7) throw new Error(`masks of seeds 1 and 2 agree on ${same} of elements`);
});
