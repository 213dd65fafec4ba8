import assert from "node:assert/strict";
import { UserError } from "../../core/errors.ts";
import {
  defaultOut,
  describeRun,
  FULL,
  parseTrainArgs,
  QUICK,
  resolveTrainOptions,
} from "./options.ts";

Deno.test("parseTrainArgs reads every flag", () => {
  const { given, resume } = parseTrainArgs([
    "--model",
    "resnet18,tiny",
    "--model",
    "densenet121",
    "--split",
    "random",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--lr",
    "3e-4",
    "--image-size",
    "64",
    "--seed",
    "7",
    "--limit",
    "200",
    "--class-weights",
    "--early-stop",
    "2",
    "--patience",
    "1",
    "--checkpoint-every",
    "5",
    "--pretrained",
    "w.pth",
  ]);
  assert.equal(resume, undefined);
  assert.deepEqual(given.models, ["resnet18", "tiny", "densenet121"]);
  assert.equal(given.split, "random");
  assert.equal(given.epochs, 3);
  assert.equal(given.batchSize, 16);
  assert.equal(given.lr, 3e-4);
  assert.equal(given.imageSize, 64);
  assert.equal(given.seed, 7);
  assert.equal(given.limit, 200);
  assert.equal(given.classWeights, true);
  assert.equal(given.earlyStop, 2);
  assert.equal(given.patience, 1);
  assert.equal(given.checkpointEvery, 5);
  assert.equal(given.pretrained, "w.pth");
});

Deno.test("parseTrainArgs rejects bad values with the flag named", () => {
  const bad: [string[], RegExp][] = [
    [["--model", "vgg16"], /--model vgg16: unknown model/],
    [["--split", "patient"], /--split patient/],
    [["--epochs", "0"], /--epochs 0: expected an integer >= 1/],
    [["--batch-size", "2.5"], /--batch-size 2\.5/],
    [["--lr=-1"], /--lr -1: expected a positive number/],
    [["--lr", "abc"], /--lr abc/],
    [["--profile", "fast"], /--profile fast/],
    [["--bogus"], /bogus/],
    [["--resume", "runs/x", "--epochs", "2"], /--resume runs\/x takes no other flags/],
  ];
  for (const [args, re] of bad) {
    assert.throws(() => parseTrainArgs(args), (e) => e instanceof UserError && re.test(e.message));
  }
});

Deno.test("profiles: quick on a software adapter, full on a GPU, flags win", () => {
  const quick = resolveTrainOptions({}, true);
  assert.equal(quick.profile, "quick");
  assert.equal(quick.imageSize, QUICK.imageSize);
  assert.equal(quick.limit, QUICK.limit);
  assert.equal(quick.epochs, QUICK.epochs);
  assert.deepEqual(quick.models, ["resnet18", "densenet121", "mobilenet_v2", "efficientnet_b0"]);
  assert.equal(quick.split, "lesion");
  assert.equal(quick.lr, 1e-3);
  const full = resolveTrainOptions({}, false);
  assert.equal(full.profile, "full");
  assert.equal(full.imageSize, FULL.imageSize);
  assert.equal(full.epochs, FULL.epochs);
  assert.equal(full.limit, 0);
  const mixed = resolveTrainOptions({ epochs: 5, imageSize: 48 }, true);
  assert.equal(mixed.epochs, 5);
  assert.equal(mixed.imageSize, 48);
  assert.equal(mixed.limit, QUICK.limit);
  assert.deepEqual(mixed.fromProfile, ["batchSize", "limit"]);
  assert.equal(resolveTrainOptions({ profile: "full" }, true).imageSize, 224);
  const lines = describeRun(quick, "llvmpipe", true);
  assert.match(lines[0], /quick profile on llvmpipe \(software adapter\)/);
  assert.match(lines[1], /stratified subset of 1500 images/);
  assert.equal(describeRun(full, "NVIDIA H100", false).length, 2);
  assert.match(defaultOut(new Date("2026-01-02T03:04:05Z")), /^runs\/2026-01-02T03-04-05$/);
});
