/**
 * Parity with torchvision 0.14: each model loads a torch.save state_dict of random weights
 * through our readers (densenet121's in the legacy format with old key names), matches
 * PyTorch's eval-mode logits, and after one training-mode forward and backward of the mean
 * cross-entropy matches the gradients of a few parameters. Fixtures: generate_fixtures.py.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PARITY_MODELS, parityFixtures } from "./fixtures.ts";
import { initGpu } from "../../packages/kernels/runtime/gpu.ts";
import { loadWeightsFile } from "../../packages/core/io/load.ts";
import { readNpy } from "../../packages/core/io/npy.ts";
import { tensor } from "../../packages/core/tensor.ts";
import { tidy } from "../../packages/core/scope.ts";
import { backward, noGrad } from "../../packages/core/autograd.ts";
import { crossEntropy } from "../../packages/core/ops/softmax.ts";
import { fromNchw } from "../../packages/core/ops/structure.ts";
import { type ModelName, MODELS } from "../../packages/models/registry.ts";
import { loadStateDict, torchEntries } from "../../packages/models/load_weights.ts";
import { HWIO_TO_OIHW, permute4Cpu } from "../../packages/kernels/ops/structure.ts";

async function npy(dir: string, name: string) {
  return readNpy(await Deno.readFile(join(dir, name)), name);
}

/** max |a - b| / (1 + max |b|): the error relative to the reference's scale. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / (1 + scale);
}

/** HWIO [KH, KW, I, O] gradient as OIHW (PyTorch's layout), on the CPU. */
function hwioToOihw(g: Float32Array, [O, I, KH, KW]: number[]): Float64Array {
  return permute4Cpu(Float64Array.from(g), [KH, KW, I, O], HWIO_TO_OIHW);
}

/**
 * Stated tolerances, relative to the reference's largest magnitude. Logits: ours (f32) against
 * PyTorch's f32. Gradients: ours against PyTorch's float64 gradients, allowed the larger of
 * GRAD_TOL and twice PyTorch's own float32 error on the same gradient (a random network in
 * training mode can be sensitive: MobileNetV2's ReLU6 + small-batch BatchNorm gives PyTorch
 * itself about 7e-3).
 */
const LOGIT_TOL = 2e-4;
const GRAD_TOL = 2e-4;

for (const name of PARITY_MODELS as ModelName[]) {
  Deno.test(`parity with torchvision: ${name} logits (eval) and gradients (train)`, async () => {
    await initGpu();
    const dir = join(await parityFixtures(), name);
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "meta.json")));
    const sd = await loadWeightsFile(join(dir, "weights.pth"));
    // Dropout and stochastic depth off, as in the fixture's training pass.
    const model = MODELS[name].build({ dropout: 0, stochasticDepthProb: 0 } as never);
    loadStateDict(model, sd, { strict: true, file: "weights.pth" });
    const input = await npy(dir, "input.npy");
    const labels = await npy(dir, "labels.npy");
    const expected = await npy(dir, "logits.npy");
    const x = tensor(input.data as Float32Array, input.shape).keep();
    const y = tensor(Int32Array.from(labels.data as BigInt64Array, Number)).keep();
    try {
      model.eval();
      const logits = noGrad(() => tidy(() => model.forward(fromNchw(x))));
      const err = relErr(await logits.read(), expected.data as Float32Array);
      logits.dispose();
      assert.ok(err <= LOGIT_TOL, `${name} eval logits differ from torchvision: ${err}`);

      model.train();
      const loss = tidy(() => {
        const l = crossEntropy(model.forward(fromNchw(x)), y);
        backward(l);
        return l;
      });
      const lossErr = Math.abs((await loss.item()) - meta.train_loss);
      loss.dispose();
      assert.ok(
        lossErr <= 1e-3 * Math.abs(meta.train_loss),
        `${name} train loss off by ${lossErr}`,
      );
      const entries = torchEntries(model);
      for (const key of meta.grad_keys as string[]) {
        const e = entries.get(key)!;
        const ref = (await npy(dir, `grad_${key}.npy`)).data as Float32Array;
        const raw = (await e.tensor.grad!.read()) as Float32Array;
        const ours = e.layout === "hwio" ? hwioToOihw(raw, e.shape) : raw;
        const gErr = relErr(ours, ref);
        const tol = Math.max(GRAD_TOL, 2 * meta.torch_f32_grad_error[key]);
        assert.ok(gErr <= tol, `${name} gradient of ${key} differs: ${gErr} > ${tol}`);
      }
    } finally {
      for (const p of model.parameters()) p.grad?.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    }
  });
}
