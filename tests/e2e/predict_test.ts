/**
 * `predict` end to end: a torchvision-format .pth of random weights and a NumPy NCHW batch
 * reproduce torchvision's logits; an image runs through the eval transform; bad input gives
 * one clear line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parityFixtures } from "../parity/fixtures.ts";
import { cli } from "./cli.ts";
import { readNpy } from "../../packages/core/io/npy.ts";

const IMAGE = fileURLToPath(
  new URL("../../../shared/data/ham10000/images_600x450/ISIC_0024306.jpg", import.meta.url),
);

const predict = (...args: string[]) => cli(["predict", ...args]);

Deno.test("predict: torchvision .pth + NCHW .npy reproduces torchvision's logits", async () => {
  const dir = join(await parityFixtures(), "mobilenet_v2");
  const out = join(await Deno.makeTempDir(), "logits.npy");
  const r = await predict(
    "--model",
    "mobilenet_v2",
    "--weights",
    join(dir, "weights.pth"),
    "--input",
    join(dir, "input.npy"),
    "--logits",
    out,
    "--top",
    "2",
  );
  assert.equal(r.code, 0, r.stderr);
  const ours = readNpy(await Deno.readFile(out)).data as Float32Array;
  const ref = readNpy(await Deno.readFile(join(dir, "logits.npy"))).data as Float32Array;
  assert.equal(ours.length, ref.length);
  let err = 0, scale = 0;
  ref.forEach((v, i) => {
    err = Math.max(err, Math.abs(ours[i] - v));
    scale = Math.max(scale, Math.abs(v));
  });
  assert.ok(err <= 2e-4 * (1 + scale), `max |ours - torchvision| = ${err}`);
  assert.match(r.stdout, /\[1\]: class \d+ [\d.]+%, class \d+/);
});

Deno.test("predict: an image goes through the eval transform; bad input is one clear line", async () => {
  const dir = join(await parityFixtures(), "resnet18");
  const ok = await predict(
    "--model",
    "resnet18",
    "--weights",
    join(dir, "weights.pth"),
    "--image",
    IMAGE,
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /ISIC_0024306\.jpg: class \d+ [\d.]+%/);

  const noWeights = await predict("--image", IMAGE);
  assert.equal(noWeights.code, 1);
  assert.match(noWeights.stderr, /^error: --weights FILE is required/);

  const wrongModel = await predict(
    "--model",
    "densenet121",
    "--weights",
    join(dir, "weights.pth"),
    "--image",
    IMAGE,
  );
  assert.equal(wrongModel.code, 1);
  assert.match(wrongModel.stderr, /no 'classifier.weight': are these densenet121 weights\?/);

  const badNpy = await predict(
    "--model",
    "resnet18",
    "--weights",
    join(dir, "weights.pth"),
    "--input",
    join(dir, "labels.npy"),
  );
  assert.equal(badNpy.code, 1);
  assert.match(badNpy.stderr, /expected a float32 NCHW batch/);
});
