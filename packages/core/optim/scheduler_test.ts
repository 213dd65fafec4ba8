import assert from "node:assert/strict";
import { ReduceLROnPlateau } from "./scheduler.ts";
import { Optimizer } from "./optimizer.ts";

class Dummy extends Optimizer {
  constructor(lr: number) {
    super([], lr, 0);
  }
  protected update(): void {}
}

Deno.test("ReduceLROnPlateau follows PyTorch: reduce after patience+1 bad epochs, then cooldown", () => {
  const opt = new Dummy(1e-3);
  const s = new ReduceLROnPlateau(opt, { factor: 0.1, patience: 2, cooldown: 1 });
  // Improving, then flat. PyTorch reduces when num_bad_epochs > patience.
  const losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9];
  const lrs = losses.map((l) => {
    s.step(l);
    return opt.lr;
  });
  // Epochs 3-5 are bad (3 > 2): reduce at epoch index 4. Cooldown 1 swallows epoch 5; then
  // epochs 6, 7, 8 are bad again: reduce at index 8.
  assert.deepEqual(lrs.map((v) => +v.toExponential(6)), [
    1e-3,
    1e-3,
    1e-3,
    1e-3,
    1e-4,
    1e-4,
    1e-4,
    1e-4,
    1e-5,
  ]);
});

Deno.test("ReduceLROnPlateau honours minLr and the relative threshold", () => {
  const opt = new Dummy(1e-3);
  const s = new ReduceLROnPlateau(opt, { patience: 0, minLr: 5e-4, threshold: 0.1 });
  s.step(1.0);
  // 0.95 is not 10% better than 1.0: a bad epoch, so with patience 0 the lr drops to minLr.
  assert.equal(s.step(0.95), true);
  assert.equal(opt.lr, 5e-4);
  assert.equal(s.step(2), false);
  assert.equal(opt.lr, 5e-4);
});
