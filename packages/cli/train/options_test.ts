import assert from "node:assert/strict";
import { UserError } from "../../core/errors.ts";
import { parseTrainArgs, TRAIN_USAGE } from "./options.ts";

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
    [["--pretrained", "tfslim:"], /^--pretrained tfslim:: no folder after 'tfslim:'/],
    [["--resume", "runs/x", "--epochs", "2"], /--resume runs\/x takes no other flags/],
  ];
  for (const [args, re] of bad) {
    assert.throws(() => parseTrainArgs(args), (e) => e instanceof UserError && re.test(e.message));
  }
});

Deno.test("--pretrained tfslim[:DIR] is read as given and documented", () => {
  assert.equal(parseTrainArgs(["--pretrained", "tfslim"]).given.pretrained, "tfslim");
  assert.equal(parseTrainArgs(["--pretrained=tfslim:/w/tf"]).given.pretrained, "tfslim:/w/tf");
  assert.match(TRAIN_USAGE, /--pretrained none\|torchvision\|tfslim\[:DIR\]\|FILE/);
  assert.match(TRAIN_USAGE, /tfslim: mobilenet_v2 only/);
});
