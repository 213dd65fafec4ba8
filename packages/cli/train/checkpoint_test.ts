import assert from "node:assert/strict";
import { join } from "node:path";
import { gpu, initGpu } from "../../kernels/runtime/gpu.ts";
import { UserError } from "../../core/errors.ts";
import { Loader } from "../../core/data/loader.ts";
import { loadSafetensorsFile, saveSafetensorsFile } from "../../core/io/load.ts";
import type { Module } from "../../core/nn/module.ts";
import {
  checkpointInput,
  type CheckpointMeta,
  IMAGENET_INPUT,
  loadCheckpointWeights,
  moduleCounters,
  readCheckpoint,
  restoreModuleCounters,
  restoreTrainingState,
  saveCheckpoint,
  savedEpochProgress,
  schedulerMeta,
  TFSLIM_INPUT,
} from "./checkpoint.ts";
import { DivergedError, EpochAccumulator, Trainer } from "./trainer.ts";
import { TinyNet } from "./tiny_model.ts";
import { buildModel } from "./models.ts";
import { fakeSamples, fakeSource } from "./testing.ts";

const OPTS = { numClasses: 7, imageSize: 8, lr: 1e-2, seed: 9, patience: 1 };

function meta(trainer: Trainer, step: number, stepImages: number[]): CheckpointMeta {
  return {
    format: "dermagpu-checkpoint",
    version: 1,
    model: "tiny",
    numClasses: 7,
    classNames: ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"],
    imageSize: 8,
    config: { lr: 1e-2 },
    epoch: 0,
    step,
    globalStep: step,
    optimizer: { steps: trainer.optimizer.steps, lr: trainer.optimizer.lr },
    scheduler: schedulerMeta(trainer),
    stepImages,
    best: null,
    history: [],
  };
}

async function state(m: Module): Promise<number[][]> {
  const out: number[][] = [];
  for (const [, t] of m.stateTensors()) out.push([...await t.read()]);
  return out;
}

Deno.test("a mid-epoch checkpoint restores weights, Adam, scheduler and epoch progress exactly", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir();
  const samples = fakeSamples(35);
  const source = fakeSource(samples);
  const batches = [];
  for await (
    const b of new Loader({ samples, cache: source, batchSize: 7, order: "sequential" }).epoch(0)
  ) {
    batches.push(b);
  }
  const model = new TinyNet({ seed: 1 });
  const trainer = new Trainer(model, OPTS);
  trainer.scheduler.step(2.0);
  trainer.scheduler.step(2.5); // one bad epoch
  const acc = new EpochAccumulator(35, 5, 7);
  trainer.step(batches[0], 0, 0, acc);
  trainer.step(batches[1], 0, 1, acc);
  await acc.checkLosses(1, 0);
  const path = join(dir, "last.safetensors");
  await saveCheckpoint(path, model, meta(trainer, 2, acc.stepImages), { trainer, acc });

  const ckpt = await readCheckpoint(path);
  assert.equal(ckpt.meta.step, 2);
  assert.equal(ckpt.meta.optimizer?.steps, 2);
  assert.deepEqual(ckpt.meta.scheduler, { best: 2, badEpochs: 1, cooldownLeft: 0 });
  // PyTorch layout: conv weights OIHW, num_batches_tracked int64.
  assert.deepEqual(ckpt.weights.get("conv1.weight")?.shape, [8, 3, 3, 3]);
  assert.equal(ckpt.weights.get("bn1.num_batches_tracked")?.dtype, "int64");
  assert.equal(Number((ckpt.weights.get("bn1.num_batches_tracked")!.data as BigInt64Array)[0]), 2);
  assert.deepEqual(ckpt.training.get("adam_m.conv1.weight")?.shape, [3, 3, 3, 8]);
  const progress = savedEpochProgress(ckpt)!;
  assert.equal(progress.logits.length, 14 * 7);
  assert.deepEqual([...progress.losses], acc.lossValues.map((v) => Math.fround(v)));

  const copy = new TinyNet({ seed: 99 });
  loadCheckpointWeights(copy, ckpt, path);
  const resumed = new Trainer(copy, OPTS);
  restoreTrainingState(resumed, ckpt);
  assert.deepEqual(await state(copy), await state(model));
  assert.equal(resumed.optimizer.steps, 2);
  assert.deepEqual(resumed.scheduler.toJSON(), trainer.scheduler.toJSON());
  const acc2 = new EpochAccumulator(35, 5, 7);
  acc2.restore(progress.logits, progress.losses, progress.stepImages);
  // Both continue with the same step: identical weights and moments.
  trainer.step(batches[2], 0, 2, acc);
  resumed.step(batches[2], 0, 2, acc2);
  assert.deepEqual(await state(copy), await state(model));
  const [m1] = trainer.optimizer.state.get(model.parameters()[0])!;
  const [m2] = resumed.optimizer.state.get(copy.parameters()[0])!;
  assert.deepEqual([...await m1.read()], [...await m2.read()]);
  await acc.checkLosses(1, 0);
  await acc2.checkLosses(1, 0);
  assert.equal(acc2.meanLoss(), acc.meanLoss());
  assert.deepEqual(await acc2.readLogits(), await acc.readLogits());
  for (const x of [acc, acc2]) x.dispose();
  for (const x of [trainer, resumed, model, copy]) x.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("saveCheckpoint refuses non-finite weights and keeps the previous file", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir();
  const path = join(dir, "last.safetensors");
  const model = new TinyNet();
  const trainer = new Trainer(model, OPTS);
  await saveCheckpoint(path, model, meta(trainer, 0, []));
  const before = await Deno.readFile(path);
  const w = model.fc.weight;
  gpu().write(w.buffer, new Float32Array(w.size).fill(NaN));
  await assert.rejects(
    () => saveCheckpoint(path, model, meta(trainer, 1, [])),
    (e) =>
      e instanceof DivergedError && e instanceof UserError &&
      /training diverged: parameter fc\.weight is not finite; try a lower --lr/.test(e.message),
  );
  assert.deepEqual(await Deno.readFile(path), before);
  trainer.dispose();
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readCheckpoint rejects a safetensors file without dermagpu metadata", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "w.safetensors");
  await saveSafetensorsFile(
    path,
    new Map([["a", { dtype: "float32", shape: [1], data: new Float32Array(1) }]]),
  );
  assert.equal((await loadSafetensorsFile(path)).stateDict.size, 1);
  await assert.rejects(
    () => readCheckpoint(path),
    (e) => e instanceof UserError && /not a dermagpu checkpoint/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("module call counters (seeded random modules) are saved and restored by path", () => {
  class Counter extends TinyNet {
    calls = 0;
  }
  class Outer extends TinyNet {
    readonly inner = this.adopt();
    adopt(): Counter {
      return this.child("drop", new Counter());
    }
  }
  const a = new Outer();
  a.inner.calls = 41;
  assert.deepEqual(moduleCounters(a), { "drop": 41 });
  const b = new Outer();
  restoreModuleCounters(b, { "drop": 41, "missing": 3 });
  assert.equal(b.inner.calls, 41);
  assert.deepEqual(moduleCounters(new TinyNet()), {});
});

Deno.test("resnet18: save mid-epoch, restore into a fresh model, continue: bit-identical", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir();
  const samples = fakeSamples(12);
  const source = fakeSource(samples, 36, 48);
  const batches = [];
  for await (
    const b of new Loader({ samples, cache: source, batchSize: 4, order: "sequential" }).epoch(0)
  ) {
    batches.push(b);
  }
  const opts = { ...OPTS, imageSize: 32, lr: 1e-3 };
  const model = buildModel("resnet18", 7, 1);
  const trainer = new Trainer(model, opts);
  const acc = new EpochAccumulator(12, 3, 7);
  trainer.step(batches[0], 0, 0, acc);
  trainer.step(batches[1], 0, 1, acc);
  await acc.checkLosses(1, 0);
  const path = join(dir, "last.safetensors");
  await saveCheckpoint(path, model, { ...meta(trainer, 2, acc.stepImages), model: "resnet18" }, {
    trainer,
    acc,
  });
  const ckpt = await readCheckpoint(path);
  const copy = buildModel("resnet18", 7, 2);
  loadCheckpointWeights(copy, ckpt, path);
  const resumed = new Trainer(copy, opts);
  restoreTrainingState(resumed, ckpt);
  const acc2 = new EpochAccumulator(12, 3, 7);
  trainer.step(batches[2], 0, 2, acc);
  resumed.step(batches[2], 0, 2, acc2);
  const a = await state(model), b = await state(copy);
  assert.equal(a.length, b.length);
  a.forEach((t, i) => assert.deepEqual(b[i], t, `tensor ${i}`));
  for (const x of [acc, acc2]) x.dispose();
  for (const x of [trainer, resumed, model, copy]) x.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checkpointInput: old files mean imagenet without TF padding; bad values are refused", () => {
  const base = { format: "dermagpu-checkpoint", version: 1 } as CheckpointMeta;
  assert.deepEqual(checkpointInput(base, "old.safetensors"), IMAGENET_INPUT);
  assert.deepEqual(IMAGENET_INPUT, { normalize: "imagenet", tfPadding: false });
  assert.deepEqual(
    checkpointInput({ ...base, normalize: "minus1to1", tfPadding: true }, "tf.safetensors"),
    TFSLIM_INPUT,
  );
  assert.deepEqual(TFSLIM_INPUT, { normalize: "minus1to1", tfPadding: true });
  assert.throws(
    () => checkpointInput({ ...base, normalize: "caffe" as "imagenet" }, "x.safetensors"),
    (e) =>
      e instanceof UserError &&
      /^x\.safetensors: unknown input normalisation 'caffe'/.test(e.message),
  );
  assert.throws(
    () => checkpointInput({ ...base, tfPadding: "yes" as unknown as boolean }, "y.safetensors"),
    (e) => e instanceof UserError && /^y\.safetensors: tfPadding in its metadata/.test(e.message),
  );
});
