/**
 * A run killed in the middle of an epoch and resumed with `--resume` ends with exactly the
 * weights of an uninterrupted run of the same seed; a diverging run stops with the step number
 * and keeps its last good checkpoint.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadSafetensorsFile } from "../../packages/core/io/load.ts";
import { readCheckpoint } from "../../packages/cli/train/checkpoint.ts";
import { cli, cliCommand, DATA, errors, exists } from "./cli.ts";

const tmp = await Deno.makeTempDir({ prefix: "dermagpu-resume-" });
const cache = join(tmp, "cache");
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

const args = (out: string) => [
  "train",
  "--model",
  "tiny",
  "--limit",
  "120",
  "--image-size",
  "16",
  "--epochs",
  "2",
  "--batch-size",
  "8",
  "--checkpoint-every",
  "1",
  "--seed",
  "3",
  "--data",
  DATA,
  "--out",
  out,
  "--cache-dir",
  cache,
];

Deno.test("kill mid-epoch + --resume gives the same final weights as an uninterrupted run", async () => {
  const full = join(tmp, "full"), killed = join(tmp, "killed");
  const a = await cli(args(full));
  assert.equal(a.code, 0, a.stderr);

  const child = cliCommand(args(killed)).spawn();
  const ckpt = join(killed, "tiny", "last.safetensors");
  const deadline = Date.now() + 60_000;
  while (!(await exists(ckpt)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  child.kill("SIGKILL");
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.notEqual(status.code, 0);
  assert.ok(await exists(ckpt), "a step checkpoint was written");
  assert.equal(await exists(join(killed, "metrics.json")), false, "the run was cut short");
  const cut = await readCheckpoint(ckpt);
  assert.ok(cut.meta.step > 0 || cut.meta.epoch < 2, "killed before the end");

  const b = await cli(["train", "--resume", killed]);
  assert.equal(b.code, 0, b.stderr);
  const at = b.stdout.match(/tiny: resuming at epoch (\d), batch (\d+)/);
  assert.ok(at, b.stdout);
  assert.ok(Number(at[2]) > 1, `resumed mid-epoch (${at[0]})`);

  for (const file of ["last.safetensors", "best.safetensors"]) {
    const x = await loadSafetensorsFile(join(full, "tiny", file));
    const y = await loadSafetensorsFile(join(killed, "tiny", file));
    assert.deepEqual([...y.stateDict.keys()], [...x.stateDict.keys()]);
    for (const [k, t] of x.stateDict) {
      const u = y.stateDict.get(k)!;
      assert.deepEqual(u.shape, t.shape, k);
      assert.deepEqual(
        new Uint8Array(u.data.buffer, u.data.byteOffset, u.data.byteLength),
        new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        `${file} ${k} differs`,
      );
    }
  }
  const mx = JSON.parse(await Deno.readTextFile(join(full, "metrics.json")));
  const my = JSON.parse(await Deno.readTextFile(join(killed, "metrics.json")));
  const strip = (es: Record<string, unknown>[]) =>
    es.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
  assert.deepEqual(strip(my.models[0].epochs), strip(mx.models[0].epochs));
  assert.deepEqual(my.models[0].test, mx.models[0].test);
});

Deno.test("a NaN loss (--lr 1e30) stops with the step number and keeps the last good checkpoint", async () => {
  const out = join(tmp, "nan");
  const r = await cli([...args(out), "--lr", "1e30"]);
  assert.equal(r.code, 1);
  const err = errors(r.stderr);
  assert.equal(err.length, 1, r.stderr);
  const m = err[0].match(
    /^error: tiny: training diverged: the loss is (NaN|infinite) at step (\d+) \(epoch 1, batch \d+\); try a lower --lr; the last good checkpoint is (.*last\.safetensors)$/,
  );
  assert.ok(m, err[0]);
  const ckpt = await readCheckpoint(m[3]);
  assert.ok(ckpt.meta.globalStep < Number(m[2]));
  for (const [k, t] of ckpt.weights) {
    if (t.data instanceof Float32Array) assert.ok(t.data.every(Number.isFinite), k);
  }
  assert.equal(await exists(join(out, "metrics.json")), false);
});

Deno.test("--pretrained FILE loads the backbone, not the head; --early-stop stops a flat run", async () => {
  const source = join(tmp, "full", "tiny", "best.safetensors");
  if (!(await exists(source))) {
    const a = await cli(args(join(tmp, "full")));
    assert.equal(a.code, 0, a.stderr);
  }
  const out = join(tmp, "pre");
  const r = await cli([
    ...args(out),
    "--pretrained",
    source,
    "--lr",
    "1e-12",
    "--epochs",
    "4",
    "--early-stop",
    "1",
    "--class-weights",
    "--split",
    "random",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /tiny: early stop \(no better val balanced accuracy for 1 epochs\)/);
  const study = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
  // Stopped one epoch after the last improvement (BN statistics still move at lr 1e-12).
  const ran = study.models[0].epochs.length;
  assert.ok(ran < 4, `${ran} epochs`);
  assert.equal(ran, study.models[0].bestEpoch + 1);
  assert.equal(study.models[0].config.pretrained, true);
  assert.equal(study.splitMode, "random");
  const src = (await readCheckpoint(source)).weights;
  const got = (await readCheckpoint(join(out, "tiny", "last.safetensors"))).weights;
  const diff = (k: string) => {
    const a = src.get(k)!.data as Float32Array, b = got.get(k)!.data as Float32Array;
    return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  };
  assert.ok(diff("conv1.weight") < 1e-6, `backbone copied (${diff("conv1.weight")})`);
  assert.ok(diff("fc.weight") > 1e-3, "head freshly initialised");
});
