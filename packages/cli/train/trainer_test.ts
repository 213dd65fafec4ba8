import assert from "node:assert/strict";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { Loader } from "../../core/data/loader.ts";
import type { Sample } from "../../core/data/ham10000.ts";
import type { ImageSource } from "../../core/data/loader.ts";
import { crossEntropyFromLogits } from "../../core/metrics/softmax.ts";
import type { Module } from "../../core/nn/module.ts";
import {
  assertFiniteLogits,
  DivergedError,
  EpochAccumulator,
  freezeBatchNorm,
  pad4,
  stepSeed,
  Trainer,
} from "./trainer.ts";
import { TinyNet } from "./tiny_model.ts";
import { fakeSamples, fakeSource } from "./testing.ts";

const OPTS = { numClasses: 7, imageSize: 8, lr: 1e-2, seed: 5, patience: 2 };

/** Trains `epochs` epochs; returns each epoch's accumulator results. */
async function trainEpochs(
  trainer: Trainer,
  samples: Sample[],
  source: ImageSource,
  epochs: number,
  batchSize: number,
): Promise<{ losses: number[]; logits: Float32Array; labels: Int32Array; meanLoss: number }[]> {
  const out = [];
  for (let e = 0; e < epochs; e++) {
    const order = trainer.epochOrder(samples, e);
    const ordered = Array.from(order, (i) => samples[i]);
    const loader = new Loader({ samples: ordered, cache: source, batchSize, order: "sequential" });
    const acc = new EpochAccumulator(samples.length, loader.batchesPerEpoch, 7);
    let s = 0;
    for await (const b of loader.epoch(0)) trainer.step(b, e, s++, acc);
    const losses = await acc.checkLosses(e + 1, 0);
    out.push({
      losses,
      logits: await acc.readLogits(),
      labels: Int32Array.from(ordered, (x) => x.label),
      meanLoss: acc.meanLoss(),
    });
    acc.dispose();
  }
  return out;
}

async function weights(m: Module): Promise<number[]> {
  const out: number[] = [];
  for (const [, t] of m.stateTensors()) out.push(...await t.read());
  return out;
}

Deno.test("Trainer learns a separable set; per-step losses match the recorded logits", async () => {
  await initGpu();
  const samples = fakeSamples(42);
  const source = fakeSource(samples);
  const model = new TinyNet({ seed: 1 });
  const trainer = new Trainer(model, { ...OPTS, augment: { scale: [0.8, 1], hflip: 0.5 } });
  const epochs = await trainEpochs(trainer, samples, source, 8, 14);
  assert.equal(epochs[0].losses.length, 3);
  assert.equal(epochs[0].logits.length, 42 * 7);
  // The mean of the batch losses (weighted by batch size) is the cross-entropy of the logits.
  for (const e of epochs) {
    assert.ok(Math.abs(e.meanLoss - crossEntropyFromLogits(e.logits, e.labels, 7)) < 1e-4);
  }
  assert.ok(
    epochs[7].meanLoss < epochs[0].meanLoss * 0.7,
    `loss ${epochs[0].meanLoss} -> ${epochs[7].meanLoss}`,
  );
  // Eval-mode predictions on the training images beat chance by far.
  const logits = await trainer.predict(samples, source, { batchSize: 10 });
  let right = 0;
  for (let i = 0; i < samples.length; i++) {
    const row = Array.from(logits.subarray(i * 7, i * 7 + 7));
    if (row.indexOf(Math.max(...row)) === samples[i].label) right++;
  }
  assert.ok(right >= 21, `${right}/42 right`);
  assert.equal(trainer.optimizer.steps, 24);
  trainer.dispose();
  model.dispose();
});

Deno.test("Trainer is deterministic in (seed, epoch, step); another seed differs", async () => {
  await initGpu();
  const samples = fakeSamples(21);
  const source = fakeSource(samples);
  const run = async (seed: number) => {
    const model = new TinyNet({ seed: 2 });
    const trainer = new Trainer(model, { ...OPTS, seed });
    await trainEpochs(trainer, samples, source, 1, 7);
    const w = await weights(model);
    trainer.dispose();
    model.dispose();
    return w;
  };
  const a = await run(1), b = await run(1), c = await run(2);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.notEqual(stepSeed(1, 0, 1), stepSeed(1, 1, 0));
  assert.deepEqual([...pad4(new Uint8Array([1, 2, 3, 4, 5]))], [1, 2, 3, 4, 5, 0, 0, 0]);
});

Deno.test("a diverging loss throws DivergedError with the step number", async () => {
  await initGpu();
  const samples = fakeSamples(28);
  const source = fakeSource(samples);
  const model = new TinyNet({ seed: 3 });
  const trainer = new Trainer(model, { ...OPTS, lr: 1e30 });
  await assert.rejects(
    () => trainEpochs(trainer, samples, source, 3, 7),
    (e) => e instanceof DivergedError && /loss is (NaN|infinite) at step \d+/.test(e.message),
  );
  trainer.dispose();
  model.dispose();
});

Deno.test("predict keeps the sample order; flip TTA equals plain on flip-symmetric images", async () => {
  await initGpu();
  const samples = fakeSamples(9);
  // Constant-colour images: every flip is the same image.
  const flat: ImageSource = {
    height: 12,
    width: 16,
    bytes: 12 * 16 * 3,
    get: (p) => Promise.resolve(new Uint8Array(12 * 16 * 3).fill(20 + 25 * Number(p))),
  };
  const model = new TinyNet({ seed: 4 });
  const trainer = new Trainer(model, OPTS);
  const plain = await trainer.predict(samples, flat, { batchSize: 4 });
  const tta = await trainer.predict(samples, flat, { batchSize: 4, tta: true });
  const reversed = await trainer.predict([...samples].reverse(), flat, { batchSize: 4 });
  assert.equal(plain.length, 63);
  for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(plain[i] - tta[i]) < 1e-5);
  for (let i = 0; i < 9; i++) {
    for (let c = 0; c < 7; c++) {
      assert.ok(Math.abs(plain[i * 7 + c] - reversed[(8 - i) * 7 + c]) < 1e-5);
    }
  }
  // Different images give different logits (the test can fail).
  assert.notEqual(plain[0], plain[7]);
  trainer.dispose();
  model.dispose();
});

Deno.test("training steps keep GPU bytes in use flat (everything inside tidy is freed)", async () => {
  const g = await initGpu();
  const samples = fakeSamples(40);
  const source = fakeSource(samples);
  const model = new TinyNet({ seed: 6 });
  const trainer = new Trainer(model, OPTS);
  const acc = new EpochAccumulator(40, 5, 7);
  const loader = new Loader({ samples, cache: source, batchSize: 8, order: "sequential" });
  const used: number[] = [];
  let s = 0;
  for await (const b of loader.epoch(0)) {
    trainer.step(b, 0, s++, acc);
    await g.sync();
    used.push(g.pool.bytesInUse);
  }
  // Step 1 creates Adam's moments; afterwards nothing accumulates.
  assert.equal(new Set(used.slice(1)).size, 1, `bytes in use ${used}`);
  assert.ok(used[1] > 0);
  acc.dispose();
  trainer.dispose();
  model.dispose();
});

Deno.test("assertFiniteLogits names the pass whose logits are not finite", () => {
  assertFiniteLogits(new Float32Array([1, -2, 3]), "validation (epoch 1)");
  assert.throws(
    () => assertFiniteLogits(new Float32Array([1, Infinity]), "validation (epoch 2)"),
    (e) =>
      e instanceof DivergedError &&
      e.message ===
        "training diverged: the validation (epoch 2) logits are not finite; try a lower --lr",
  );
  assert.throws(() => assertFiniteLogits(new Float32Array([NaN]), "test"), DivergedError);
});

Deno.test("freezeBatchNorm keeps running statistics (BN affine still learns); normalize reaches predict", async () => {
  await initGpu();
  const samples = fakeSamples(14);
  const source = fakeSource(samples);
  const stats = async (m: TinyNet) => [
    ...await m.bn1.runningMean.read(),
    ...await m.bn1.runningVar.read(),
    ...await m.bn2.runningMean.read(),
  ];
  const run = async (freeze: boolean) => {
    const model = new TinyNet({ seed: 2 });
    const trainer = new Trainer(model, {
      ...OPTS,
      normalize: "minus1to1",
      freezeBatchNorm: freeze,
    });
    assert.equal(trainer.normalize, "minus1to1");
    const s0 = await stats(model), w0 = [...await model.bn1.weight.read()];
    await trainEpochs(trainer, samples, source, 1, 7);
    const changed = (a: number[], b: number[]) => a.some((v, i) => v !== b[i]);
    const result = {
      statsChanged: changed(s0, await stats(model)),
      bnWeightChanged: changed(w0, [...await model.bn1.weight.read()]),
      training: model.training,
    };
    trainer.dispose();
    model.dispose();
    return result;
  };
  assert.deepEqual(await run(true), { statsChanged: false, bnWeightChanged: true, training: true });
  assert.deepEqual(await run(false), { statsChanged: true, bnWeightChanged: true, training: true });
  assert.equal(freezeBatchNorm(new TinyNet({ seed: 0 })), 2);

  // The same model sees other inputs under the two normalisations.
  const model = new TinyNet({ seed: 3 });
  const logits = async (normalize: "imagenet" | "minus1to1") => {
    const t = new Trainer(model, { ...OPTS, normalize });
    const out = await t.predict(samples.slice(0, 4), source, { batchSize: 4 });
    t.dispose();
    return out;
  };
  const a = await logits("imagenet"), b = await logits("minus1to1");
  assert.equal(a.length, 28);
  assert.ok(a.some((v, i) => Math.abs(v - b[i]) > 1e-4), "normalisation changes the logits");
  assert.deepEqual(await logits("minus1to1"), b);
  model.dispose();
});
