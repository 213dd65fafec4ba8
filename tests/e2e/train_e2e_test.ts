/**
 * End to end: `train` on a small stratified subset of the real HAM10000 images, every output
 * checked (metrics.json, comparison.md/csv, report.html in Chromium, checkpoints, split.json),
 * then `evaluate` of the produced checkpoint on another split with TTA; the one-line errors.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { assertStudyResults } from "../../packages/core/metrics/run_results.ts";
import { validateManifest } from "../../packages/core/data/split.ts";
import { checkReportInChromium } from "../../packages/cli/report/check_in_chromium.ts";
import { readCheckpoint } from "../../packages/cli/train/checkpoint.ts";
import { openHam10000 } from "../../packages/core/data/ham10000.ts";
import { CLASSES } from "../../packages/core/data/classes.ts";
import { cli, DATA, errors, exists } from "./cli.ts";

const tmp = await Deno.makeTempDir({ prefix: "dermagpu-e2e-" });
const cache = join(tmp, "cache");
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

Deno.test("train resnet18 on 64 images at 32 px writes every output; evaluate tests it on val", async () => {
  const out = join(tmp, "run");
  const r = await cli([
    "train",
    "--model",
    "resnet18",
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
  const lines = r.stdout.split("\n");
  assert.match(lines[0], /^dermagpu train: \w+ profile on /);
  assert.match(r.stdout, /resnet18 epoch 1\/1: train loss \d/);
  assert.match(r.stdout, /resnet18 test \(best epoch 1\): acc/);
  assert.match(r.stdout, /\| resnet18 \| /);

  const study = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
  assertStudyResults(study);
  assert.equal(study.splitMode, "lesion");
  assert.equal(study.models.length, 1);
  const m = study.models[0];
  assert.equal(m.config.model, "resnet18");
  assert.equal(m.config.trainImages + m.config.valImages + m.config.testImages, 64);
  assert.equal(m.epochs.length, 1);
  const e = m.epochs[0];
  for (const k of ["trainLoss", "valLoss", "valAccuracy", "valBalancedAccuracy", "valMacroF1"]) {
    assert.ok(Number.isFinite(e[k as keyof typeof e]), k);
  }
  assert.deepEqual(Object.keys(e.valPerClassRecall), [
    "akiec",
    "bcc",
    "bkl",
    "df",
    "mel",
    "nv",
    "vasc",
  ]);
  assert.equal(m.test.numSamples, m.config.testImages);
  assert.equal(m.test.confusionMatrix.flat().reduce((a, b) => a + b, 0), m.config.testImages);

  const md = await Deno.readTextFile(join(out, "comparison.md"));
  assert.match(md, /^\| Model \|/);
  assert.match(md, /\| resnet18 \| .* \| 74\.65 \|/);
  const csv = (await Deno.readTextFile(join(out, "comparison.csv"))).trim().split("\n");
  assert.equal(csv.length, 2);
  assert.match(csv[1], /^resnet18,/);

  const split = validateManifest(JSON.parse(await Deno.readTextFile(join(out, "split.json"))), "s");
  assert.equal(split.train.length + split.val.length + split.test.length, 10015);

  const best = await readCheckpoint(join(out, "resnet18", "best.safetensors"));
  assert.equal(best.meta.model, "resnet18");
  assert.equal(best.meta.epoch, 1);
  assert.deepEqual(best.weights.get("conv1.weight")?.shape, [64, 3, 7, 7]);
  assert.equal(best.training.size, 0);
  const last = await readCheckpoint(join(out, "resnet18", "last.safetensors"));
  assert.ok(last.training.has("adam_m.fc.weight"));
  assert.equal(last.meta.history.length, 1);
  assert.deepEqual(
    { ...last.meta.rng, scheme: undefined },
    { seed: 0, epoch: 1, step: 0, scheme: undefined },
  );
  assert.equal(last.meta.optimizer?.steps, 4); // 52 training images in batches of 16

  const check = await checkReportInChromium(join(out, "report.html"));
  assert.deepEqual(check.consoleErrors, []);
  assert.ok(check.renderedSvgCount > 0, "charts rendered");
  assert.ok(check.tableCount > 0);

  // evaluate the best checkpoint on the validation split (found next to the run) with TTA.
  const ev = await cli([
    "evaluate",
    "--checkpoint",
    join(out, "resnet18", "best.safetensors"),
    "--data",
    DATA,
    "--subset",
    "val",
    "--limit",
    "24",
    "--tta",
    "--cache-dir",
    cache,
  ]);
  assert.equal(ev.code, 0, ev.stderr);
  assert.match(ev.stdout, /on 24 images: val of .*split\.json, with flip TTA/);
  assert.match(ev.stdout, /accuracy \d+\.\d\d%, balanced accuracy/);
  const evDir = join(out, "resnet18", "eval-val");
  const evStudy = JSON.parse(await Deno.readTextFile(join(evDir, "metrics.json")));
  assertStudyResults(evStudy);
  assert.equal(evStudy.models[0].test.numSamples, 24);
  const evaluation = JSON.parse(await Deno.readTextFile(join(evDir, "evaluation.json")));
  assert.equal(evaluation.tta, true);
  assert.ok(await exists(join(evDir, "report.html")));

  // evaluate on an ISIC-style ground-truth CSV (HAM10000 images are ISIC_*.jpg).
  const ham = await openHam10000({ data: DATA });
  const picked = ham.samples.filter((_, i) => i % 997 === 0).slice(0, 8);
  const codes = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"];
  const ours = ["mel", "nv", "bcc", "akiec", "bkl", "df", "vasc"];
  const rows = picked.map((x) =>
    [x.id, ...ours.map((c) => (CLASSES[x.label] === c ? "1.0" : "0.0"))].join(",")
  );
  const gt = join(tmp, "gt.csv");
  await Deno.writeTextFile(gt, [`image,${codes.join(",")}`, ...rows].join("\n") + "\n");
  const isic = await cli([
    "evaluate",
    "--checkpoint",
    join(out, "resnet18", "best.safetensors"),
    "--labels",
    gt,
    "--images-dir",
    join(DATA, "images_200x150"),
    "--out",
    join(tmp, "isic-eval"),
    "--cache-dir",
    cache,
  ]);
  assert.equal(isic.code, 0, isic.stderr);
  assert.match(isic.stdout, /on 8 images: .*gt\.csv/);
  const isicReport = JSON.parse(await Deno.readTextFile(join(tmp, "isic-eval", "evaluation.json")));
  assert.equal(isicReport.report.numSamples, 8);
  const support = isicReport.report.perClass.map((k: { support: number }) => k.support);
  const want = CLASSES.map((c) => picked.filter((x) => CLASSES[x.label] === c).length);
  assert.deepEqual(support, want);
});

Deno.test("missing data and bad flags fail with one line naming the fix", async () => {
  const r = await cli(["train", "--model", "tiny", "--data", join(tmp, "nowhere")]);
  assert.equal(r.code, 1);
  const err = errors(r.stderr);
  assert.equal(err.length, 1, r.stderr);
  assert.match(
    err[0],
    /^error: no HAM10000 metadata found in .*nowhere from --data; searched .*HAM10000_metadata\.csv.*--data DIR or HAM10000_DIR=DIR/,
  );

  // No network here: the ImageNet download fails with the way out (a cached or given file).
  const p = await cli(
    [
      "train",
      "--model",
      "resnet18",
      "--pretrained",
      "torchvision",
      "--data",
      DATA,
      "--out",
      join(tmp, "tv"),
    ],
    { DERMAGPU_CACHE: join(tmp, "empty-cache") },
  );
  assert.equal(p.code, 1);
  assert.equal(errors(p.stderr).length, 1, p.stderr);
  assert.match(
    errors(p.stderr)[0],
    /^error: cannot download https:\/\/download\.pytorch\.org\/models\/resnet18-f37072fd\.pth .*--pretrained FILE/,
  );
  const t = await cli(["train", "--model", "tiny", "--pretrained", "torchvision", "--data", DATA]);
  assert.equal(t.code, 1);
  assert.deepEqual(errors(t.stderr), [
    "error: --pretrained torchvision: tiny has no torchvision weights; use none",
  ]);

  const ev = await cli(["evaluate", "--data", DATA]);
  assert.equal(ev.code, 1);
  assert.match(errors(ev.stderr)[0], /^error: --checkpoint FILE is required/);
  assert.equal(errors(ev.stderr).length, 1);

  const flag = await cli(["train", "--epochs", "zero"]);
  assert.equal(flag.code, 1);
  assert.deepEqual(errors(flag.stderr), ["error: --epochs zero: expected an integer >= 1"]);
});
