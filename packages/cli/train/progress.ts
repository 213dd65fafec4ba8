/**
 * Training progress: on a terminal, two live bars (epoch and batch) with images/s and ETA;
 * otherwise (logs, CI, a pipe) one plain line every `every` batches and at the end of a pass.
 */

export interface ProgressSink {
  /** A finished line (kept in the scrollback). */
  line(text: string): void;
  /** Replaces the live status line (TTY only). */
  status?(text: string): void;
}

/** Writes to stdout; live bars when stdout is a terminal. */
export function consoleSink(tty = Deno.stdout.isTerminal()): ProgressSink {
  const enc = new TextEncoder();
  let live = false;
  const sink: ProgressSink = {
    line(text) {
      if (live) Deno.stdout.writeSync(enc.encode("\r\x1b[K"));
      live = false;
      console.log(text);
    },
  };
  if (tty) {
    sink.status = (text) => {
      Deno.stdout.writeSync(enc.encode(`\r\x1b[K${text}`));
      live = true;
    };
  }
  return sink;
}

/** `[#####.....]` of `width` cells for `done`/`total`. */
export function bar(done: number, total: number, width = 20): string {
  const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const full = Math.round(f * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}]`;
}

/** Seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

export interface PassInfo {
  label: string;
  epoch: number;
  epochs: number;
  steps: number;
  /** Steps already done when this pass starts (a resumed epoch). */
  startStep?: number;
}

/** Progress of one pass over batches (a training epoch, a validation or test pass). */
export class Progress {
  #info: PassInfo | null = null;
  #t0 = 0;
  #images = 0;
  #lastLogged = 0;

  constructor(
    readonly sink: ProgressSink,
    readonly every = 10,
    readonly now: () => number = () => performance.now(),
  ) {}

  start(info: PassInfo): void {
    this.#info = info;
    this.#t0 = this.now();
    this.#images = 0;
    this.#lastLogged = info.startStep ?? 0;
  }

  /** After batch `step` (1-based) of `images` images; `loss` is the latest known mean loss. */
  update(step: number, images: number, loss?: number): void {
    const info = this.#info;
    if (!info) return;
    this.#images += images;
    const elapsed = (this.now() - this.#t0) / 1000;
    const done = step - (info.startStep ?? 0);
    const rate = elapsed > 0 ? this.#images / elapsed : 0;
    const eta = done > 0 ? (elapsed / done) * (info.steps - step) : NaN;
    const lossText = loss !== undefined && Number.isFinite(loss) ? ` loss ${loss.toFixed(4)}` : "";
    const head = `${info.label} epoch ${info.epoch}/${info.epochs}`;
    if (this.sink.status) {
      this.sink.status(
        `${head} ${bar(info.epoch - 1 + step / info.steps, info.epochs, 10)} batch ${
          bar(step, info.steps)
        } ${step}/${info.steps}${lossText} ${rate.toFixed(1)} img/s ETA ${formatDuration(eta)}`,
      );
    } else if (step - this.#lastLogged >= this.every || step === info.steps) {
      this.#lastLogged = step;
      this.sink.line(
        `${head} batch ${step}/${info.steps}${lossText} ${rate.toFixed(1)} img/s ETA ${
          formatDuration(eta)
        }`,
      );
    }
  }

  /** Images per second of the pass so far. */
  get imagesPerSecond(): number {
    const elapsed = (this.now() - this.#t0) / 1000;
    return elapsed > 0 ? this.#images / elapsed : 0;
  }
}
