/** torch.optim.lr_scheduler.ReduceLROnPlateau (mode "min", threshold mode "rel"). */
import type { Optimizer } from "./optimizer.ts";

export interface PlateauOptions {
  factor?: number;
  patience?: number;
  threshold?: number;
  cooldown?: number;
  minLr?: number;
  eps?: number;
}

export class ReduceLROnPlateau {
  best = Infinity;
  badEpochs = 0;
  cooldownLeft = 0;
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly cooldown: number;
  readonly minLr: number;
  readonly eps: number;

  constructor(private optimizer: Optimizer, opts: PlateauOptions = {}) {
    this.factor = opts.factor ?? 0.1;
    this.patience = opts.patience ?? 10;
    this.threshold = opts.threshold ?? 1e-4;
    this.cooldown = opts.cooldown ?? 0;
    this.minLr = opts.minLr ?? 0;
    this.eps = opts.eps ?? 1e-8;
    if (!(this.factor < 1)) throw new Error("ReduceLROnPlateau factor must be < 1");
  }

  /** Feeds one epoch's metric (lower is better); returns true when the lr was reduced. */
  step(metric: number): boolean {
    if (metric < this.best * (1 - this.threshold)) {
      this.best = metric;
      this.badEpochs = 0;
    } else {
      this.badEpochs++;
    }
    if (this.cooldownLeft > 0) {
      this.cooldownLeft--;
      this.badEpochs = 0;
    }
    if (this.badEpochs > this.patience) {
      this.badEpochs = 0;
      this.cooldownLeft = this.cooldown;
      const next = Math.max(this.optimizer.lr * this.factor, this.minLr);
      if (this.optimizer.lr - next > this.eps) {
        this.optimizer.lr = next;
        return true;
      }
    }
    return false;
  }

  /** Serialisable state for checkpoints. */
  toJSON(): { best: number; badEpochs: number; cooldownLeft: number } {
    return { best: this.best, badEpochs: this.badEpochs, cooldownLeft: this.cooldownLeft };
  }

  load(s: { best: number; badEpochs: number; cooldownLeft: number }): void {
    this.best = s.best;
    this.badEpochs = s.badEpochs;
    this.cooldownLeft = s.cooldownLeft;
  }
}
