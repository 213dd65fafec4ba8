import assert from "node:assert/strict";
import { defaultOut, describeRun, FULL, QUICK, resolveTrainOptions } from "./profile.ts";

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
