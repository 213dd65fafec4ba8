import assert from "node:assert/strict";
import { UserError } from "../../core/errors.ts";
import { defaultTfSlimDir } from "../../models/tfslim_mobilenet_v2.ts";
import { defaultOut, describeRun, FULL, QUICK, resolveTrainOptions } from "./profile.ts";
import { resolvePretrained } from "./study.ts";

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

Deno.test("--pretrained tfslim resolves to the TF-slim folder for mobilenet_v2 only", async () => {
  const o = resolveTrainOptions({ models: ["mobilenet_v2"], pretrained: "tfslim" }, true);
  assert.equal(o.pretrained, `tfslim:${defaultTfSlimDir()}`);
  assert.equal(
    resolveTrainOptions({ models: ["mobilenet_v2"], pretrained: "tfslim:/w/tf" }, true).pretrained,
    "tfslim:/w/tf",
  );
  assert.match(describeRun(o, "llvmpipe", true).at(-1)!, /pretrained tfslim:\//);
  // Other values pass through untouched.
  assert.equal(resolveTrainOptions({ pretrained: "w.pth" }, true).pretrained, "w.pth");
  assert.equal(resolveTrainOptions({}, true).pretrained, "none");
  const rejects = (given: Parameters<typeof resolveTrainOptions>[0], re: RegExp) =>
    assert.throws(
      () => resolveTrainOptions(given, true),
      (e) => e instanceof UserError && re.test(e.message) && !e.message.includes("\n"),
    );
  rejects(
    { models: ["resnet18"], pretrained: "tfslim" },
    /^--pretrained tfslim: TF-slim weights exist only for mobilenet_v2, not resnet18; pass --model mobilenet_v2/,
  );
  // The default models (all four) include three without TF-slim weights.
  rejects(
    { pretrained: "tfslim:/w/tf" },
    /not resnet18, densenet121, efficientnet_b0;/,
  );
  rejects({ models: ["mobilenet_v2", "tiny"], pretrained: "tfslim" }, /not tiny;/);

  // The study resolves the flag to the folder (and checks it holds mapping.json).
  const p = await resolvePretrained(o.pretrained, o.models);
  assert.deepEqual(p, { kind: "tfslim", dir: defaultTfSlimDir() });
  assert.deepEqual(await resolvePretrained("tfslim", ["mobilenet_v2"]), p);
  await assert.rejects(
    resolvePretrained("tfslim:/nowhere/tf", ["mobilenet_v2"]),
    (e) =>
      e instanceof UserError &&
      /^--pretrained tfslim:\/nowhere\/tf: no mapping\.json/.test(e.message),
  );
  await assert.rejects(
    resolvePretrained("tfslim", ["densenet121"]),
    (e) => e instanceof UserError && /only for mobilenet_v2, not densenet121/.test(e.message),
  );
});
