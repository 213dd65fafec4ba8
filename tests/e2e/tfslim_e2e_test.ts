/**
 * End to end: `train --model mobilenet_v2 --pretrained tfslim` starts from Google's TF-slim
 * ImageNet weights (the first conv holds the .npy file, transposed, up to 4 Adam steps), records
 * [-1, 1] inputs and TF padding in its checkpoint, and `evaluate` and `predict` rebuild the model
 * the same way: predict's logits of one image give exactly the loss evaluate reports for it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { readCheckpoint } from "../../packages/cli/train/checkpoint.ts";
import { cacheShape } from "../../packages/cli/train/study.ts";
import { openHam10000 } from "../../packages/core/data/ham10000.ts";
import { CLASSES } from "../../packages/core/data/classes.ts";
import { loadWeightsFile } from "../../packages/core/io/load.ts";
import { readNpy } from "../../packages/core/io/npy.ts";
import {
  defaultTfSlimDir,
  readTfSlimMapping,
  tfSlimStateDict,
} from "../../packages/models/tfslim_mobilenet_v2.ts";
import { cli, DATA, errors } from "./cli.ts";

const tmp = await Deno.makeTempDir({ prefix: "dermagpu-tfslim-" });
const cache = join(tmp, "cache");
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

/** Mean cross-entropy of `logits` [N, C] against `labels`. */
function crossEntropy(logits: Float32Array, labels: number[], C: number): number {
  let s = 0;
  labels.forEach((y, i) => {
    const row = Array.from(logits.subarray(i * C, (i + 1) * C));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    s += lse - row[y];
  });
  return s / labels.length;
}

Deno.test("train --pretrained tfslim: TF-slim start, minus1to1 + TF padding through evaluate and predict", async () => {
  const out = join(tmp, "run");
  const r = await cli([
    "train",
    "--model",
    "mobilenet_v2",
    "--pretrained",
    "tfslim",
    "--limit",
    "64",
    "--image-size",
    "32",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--data",
    DATA,
    "--out",
    out,
    "--cache-dir",
    cache,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /mobilenet_v2: TF-slim ImageNet weights .* \(TF padding, \[-1, 1\] inputs\)/,
  );
  assert.match(r.stdout, /mobilenet_v2 test \(best epoch 1\): acc/);
  const runJson = JSON.parse(await Deno.readTextFile(join(out, "run.json")));
  assert.equal(runJson.pretrained, `tfslim:${defaultTfSlimDir()}`);

  const bestFile = join(out, "mobilenet_v2", "best.safetensors");
  const best = await readCheckpoint(bestFile);
  const last = await readCheckpoint(join(out, "mobilenet_v2", "last.safetensors"));
  for (const c of [best, last]) {
    assert.equal(c.meta.normalize, "minus1to1");
    assert.equal(c.meta.tfPadding, true);
  }
  const steps = last.meta.optimizer!.steps, lr = last.meta.optimizer!.lr;
  assert.equal(steps, 4); // 52 training images in batches of 16

  // The first conv started from the TF-slim file (OHWI -> OIHW): each Adam step moves a weight
  // by at most lr * (1 - b1) / sqrt(1 - b2) ~ 3.2 lr.
  const dir = defaultTfSlimDir();
  const want = tfSlimStateDict(
    await loadWeightsFile(dir, { rawKeys: true }),
    await readTfSlimMapping(dir),
    { dir },
  ).get("features.0.0.weight")!;
  const got = best.weights.get("features.0.0.weight")!;
  assert.deepEqual(got.shape, [32, 3, 3, 3]);
  assert.deepEqual(want.shape, got.shape);
  const w = want.data as Float32Array, g = got.data as Float32Array;
  let maxDiff = 0, maxW = 0;
  w.forEach((v, i) => {
    maxDiff = Math.max(maxDiff, Math.abs(v - g[i]));
    maxW = Math.max(maxW, Math.abs(v));
  });
  const bound = steps * lr * 3.2;
  assert.ok(maxDiff <= bound, `first conv moved ${maxDiff} > ${bound} from the TF-slim file`);
  assert.ok(maxDiff > 0, "training changed the first conv");
  assert.ok(maxW > 20 * bound, `the weights (max ${maxW}) dwarf the tolerance ${bound}`);

  // --resume rebuilds the model from last.safetensors with its padding and normalisation: the
  // test pass, done again, gives the same numbers.
  const resultFile = join(out, "mobilenet_v2", "result.json");
  const before = JSON.parse(await Deno.readTextFile(resultFile));
  await Deno.remove(resultFile);
  const re = await cli(["train", "--resume", out]);
  assert.equal(re.code, 0, re.stderr);
  assert.match(re.stdout, /mobilenet_v2: resuming at epoch 2, batch 1/);
  const after = JSON.parse(await Deno.readTextFile(resultFile));
  assert.equal(after.test.numSamples, before.test.numSamples);
  assert.ok(
    Math.abs(after.test.loss - before.test.loss) <= 1e-5 * (1 + before.test.loss),
    `resumed test loss ${after.test.loss} vs ${before.test.loss}`,
  );

  // One image, stored at the cache's size so evaluate's cache and predict's decoder give the
  // same pixels; both then apply the same eval transform.
  const ham = await openHam10000({ data: DATA });
  const sample = ham.samples.find((s) => CLASSES[s.label] === "mel")!;
  const { height, width } = cacheShape(32);
  const imgDir = join(tmp, "images");
  await Deno.mkdir(imgDir);
  const image = join(imgDir, `${sample.id}.jpg`);
  await sharp(sample.path).resize(width, height, { fit: "fill" }).jpeg({ quality: 95 }).toFile(
    image,
  );
  const codes = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"];
  const gt = join(tmp, "gt.csv");
  await Deno.writeTextFile(
    gt,
    `image,${codes.join(",")}\n${sample.id},${
      codes.map((c) => (c === "MEL" ? "1.0" : "0.0")).join(",")
    }\n`,
  );
  const ev = await cli([
    "evaluate",
    "--checkpoint",
    bestFile,
    "--labels",
    gt,
    "--images-dir",
    imgDir,
    "--out",
    join(tmp, "eval"),
    "--cache-dir",
    cache,
  ]);
  assert.equal(ev.code, 0, ev.stderr);
  assert.match(ev.stdout, /evaluating mobilenet_v2 .* on 1 images/);
  const evLoss = JSON.parse(await Deno.readTextFile(join(tmp, "eval", "evaluation.json"))).report
    .loss;
  assert.ok(Number.isFinite(evLoss));

  const predictLoss = async (...extra: string[]) => {
    const logits = join(tmp, `logits${extra.length}.npy`);
    const p = await cli([
      "predict",
      "--weights",
      bestFile,
      "--image",
      image,
      "--logits",
      logits,
      ...extra,
    ]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /\.jpg: (akiec|bcc|bkl|df|mel|nv|vasc) [\d.]+%, /);
    const l = readNpy(await Deno.readFile(logits)).data as Float32Array;
    assert.equal(l.length, 7);
    return crossEntropy(l, [CLASSES.indexOf("mel")], 7);
  };
  // predict defaults to the checkpoint's preprocessing (tf = [-1, 1]) and padding.
  const tfLoss = await predictLoss();
  assert.ok(
    Math.abs(tfLoss - evLoss) <= 1e-4 * (1 + evLoss),
    `predict ${tfLoss} vs evaluate ${evLoss}`,
  );
  assert.equal(await predictLoss("--preprocess", "tf", "--top", "3"), tfLoss);
  // --preprocess still overrides, and ImageNet normalisation gives other logits.
  const imagenetLoss = await predictLoss("--preprocess", "imagenet");
  assert.ok(Math.abs(imagenetLoss - evLoss) > 1e-3, `imagenet ${imagenetLoss} vs ${evLoss}`);
});

Deno.test("--pretrained tfslim with another model, or a folder without the files: one line", async () => {
  const r = await cli(["train", "--model", "resnet18", "--pretrained", "tfslim", "--data", DATA]);
  assert.equal(r.code, 1);
  assert.deepEqual(errors(r.stderr), [
    "error: --pretrained tfslim: TF-slim weights exist only for mobilenet_v2, not resnet18; " +
    "pass --model mobilenet_v2 (or another --pretrained)",
  ]);
  const d = await cli([
    "train",
    "--model",
    "mobilenet_v2",
    "--pretrained",
    `tfslim:${join(tmp, "none")}`,
    "--data",
    DATA,
    "--out",
    join(tmp, "none-run"),
  ]);
  assert.equal(d.code, 1);
  assert.equal(errors(d.stderr).length, 1, d.stderr);
  assert.match(errors(d.stderr)[0], /^error: --pretrained tfslim:.*none: no mapping\.json in /);
});
