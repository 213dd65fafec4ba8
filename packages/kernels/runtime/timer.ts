/**
 * GPU timing of regions of recorded work.
 *
 * With `timestamp-query` (llvmpipe, the H100/H200 through Vulkan): `mark()` ends the batcher's
 * open compute pass and records an empty compute pass whose `timestampWrites` writes one
 * timestamp. A pass-boundary timestamp is taken after all earlier commands finished (Vulkan's
 * vkCmdWriteTimestamp orders after everything recorded before it), so the difference of two
 * marks is the GPU time of the dispatches recorded between them, idle gaps included. Nothing is
 * synchronised while marking; `read()` resolves the query set once and returns nanoseconds.
 * No hook in the batcher is needed: `batcher.encoder()` already closes the open pass, and the
 * next dispatch opens a fresh one on the same encoder.
 *
 * Without timestamps (or with `{ timestamps: false }`) the timer falls back to the wall clock:
 * `mark()` records `performance.now()` when it is called, which only means GPU time if the
 * caller synchronised first; `markSynced()` does `await g.sync()` before reading the clock, so
 * regions between synced marks are correct in both modes.
 *
 * Counters may reset between marks (gpuweb #4069): a negative difference is reported as NaN
 * rather than as a huge number.
 */
import type { Gpu } from "./gpu.ts";

export type TimerMode = "timestamp" | "wall";

export interface TimerOptions {
  /** Use timestamp queries where the device has them (default true). */
  timestamps?: boolean;
  /** Marks that fit before `read()` must be called (default 4096). */
  capacity?: number;
}

/** One mark: its label and time in ns (relative to the first mark since the last reset). */
export interface Mark {
  label: string;
  ns: number;
}

/** Time from one mark to the next, labelled by the earlier mark. */
export interface Region {
  label: string;
  ns: number;
}

export class GpuTimer {
  readonly mode: TimerMode;
  readonly capacity: number;
  #labels: string[] = [];
  #wall: number[] = [];
  #querySet: GPUQuerySet | null = null;
  #resolve: GPUBuffer | null = null;

  constructor(private g: Gpu, opts: TimerOptions = {}) {
    this.capacity = opts.capacity ?? 4096;
    if (!(this.capacity >= 2 && this.capacity <= 4096)) {
      throw new Error(`timer capacity must be in 2..4096, got ${this.capacity}`);
    }
    const wanted = opts.timestamps ?? true;
    this.mode = wanted && g.info.timestamps && g.device.features.has("timestamp-query")
      ? "timestamp"
      : "wall";
  }

  /** Marks recorded since the last `read()` or `reset()`. */
  get pending(): number {
    return this.#labels.length;
  }

  /** Records a mark after the work recorded so far. Never waits. */
  mark(label = ""): void {
    const i = this.#labels.length;
    if (i >= this.capacity) {
      throw new Error(`timer full (${this.capacity} marks): read() or reset() it first`);
    }
    this.#labels.push(label);
    if (this.mode === "wall") {
      this.#wall.push(performance.now());
      return;
    }
    this.#querySet ??= this.g.device.createQuerySet({ type: "timestamp", count: this.capacity });
    const pass = this.g.batcher.encoder().beginComputePass({
      timestampWrites: { querySet: this.#querySet, beginningOfPassWriteIndex: i },
    });
    pass.end();
  }

  /**
   * A mark that is correct in both modes: in wall-clock mode it first waits for the GPU to
   * finish; with timestamps it is `mark()` (no wait).
   */
  async markSynced(label = ""): Promise<void> {
    if (this.mode === "wall") await this.g.sync();
    this.mark(label);
  }

  /** Forgets the recorded marks. */
  reset(): void {
    this.#labels = [];
    this.#wall = [];
  }

  /**
   * Submits pending work, waits for it and returns the marks in order, in ns from the first
   * one; the timer is empty afterwards.
   */
  async read(): Promise<Mark[]> {
    const labels = this.#labels, wall = this.#wall;
    this.reset();
    if (labels.length === 0) return [];
    if (this.mode === "wall") {
      await this.g.sync();
      return labels.map((label, i) => ({ label, ns: (wall[i] - wall[0]) * 1e6 }));
    }
    const n = labels.length;
    this.#resolve ??= this.g.device.createBuffer({
      size: 8 * this.capacity,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.g.batcher.encoder().resolveQuerySet(this.#querySet!, 0, n, this.#resolve, 0);
    const bytes = await this.g.read(this.#resolve, 8 * n);
    const ticks = new BigUint64Array(bytes);
    return labels.map((label, i) => ({ label, ns: Number(ticks[i] - ticks[0]) }));
  }

  /** Frees the query set and its resolve buffer. */
  dispose(): void {
    this.#querySet?.destroy();
    this.#resolve?.destroy();
    this.#querySet = null;
    this.#resolve = null;
    this.reset();
  }
}

/**
 * The regions between consecutive marks (labelled by the mark that opens them), in order;
 * a negative difference (counter reset) becomes NaN.
 */
export function regions(marks: readonly Mark[]): Region[] {
  const out: Region[] = [];
  for (let i = 0; i + 1 < marks.length; i++) {
    const ns = marks[i + 1].ns - marks[i].ns;
    out.push({ label: marks[i].label, ns: ns >= 0 ? ns : NaN });
  }
  return out;
}

/** Total ns per label over `regions(marks)` (repeated labels add up; NaN regions are skipped). */
export function totals(marks: readonly Mark[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of regions(marks)) {
    if (Number.isNaN(r.ns)) continue;
    out.set(r.label, (out.get(r.label) ?? 0) + r.ns);
  }
  return out;
}

/**
 * GPU time in ms of each of `iterations` runs of `record` (which records dispatches), after
 * `warmup` untimed runs. One readback for all iterations.
 */
export async function timeRecorded(
  g: Gpu,
  record: (iteration: number) => void,
  opts: { iterations?: number; warmup?: number; timer?: GpuTimer } = {},
): Promise<number[]> {
  const iterations = opts.iterations ?? 5, warmup = opts.warmup ?? 1;
  for (let i = 0; i < warmup; i++) record(-1 - i);
  await g.sync();
  const timer = opts.timer ?? new GpuTimer(g, { capacity: Math.max(2, iterations + 1) });
  try {
    await timer.markSynced("run");
    for (let i = 0; i < iterations; i++) {
      record(i);
      // In wall mode every iteration is synced, so each run is measured on its own.
      await timer.markSynced("run");
    }
    return regions(await timer.read()).map((r) => r.ns / 1e6);
  } finally {
    if (!opts.timer) timer.dispose();
  }
}

/** Median of a non-empty list (NaN entries ignored; NaN if none are left). */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
