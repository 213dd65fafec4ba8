/**
 * Batches of uint8 NHWC images for training and evaluation.
 *
 * Each epoch has its own seeded order: "shuffle" (a permutation seeded by (seed, epoch)),
 * "balanced" (as many draws as samples, every class equally likely, with replacement) or
 * "sequential" (the samples in the given order). While the caller works on batch k, batches
 * k+1..k+prefetch are already being read from the cache (or decoded by sharp on its thread
 * pool on a cache miss).
 */
import { balancedIndices } from "./balance.ts";
import type { Sample } from "./ham10000.ts";
import { mixSeed, Rng } from "./rng.ts";

export type Order = "shuffle" | "balanced" | "sequential";

export interface Batch {
  /** n*height*width*3 bytes, NHWC RGB. */
  images: Uint8Array;
  /** Class index per image. */
  labels: Int32Array;
  ids: string[];
  n: number;
  height: number;
  width: number;
}

/** Where the loader gets an image's bytes: an ImageCache, or anything shaped like one. */
export interface ImageSource {
  readonly height: number;
  readonly width: number;
  /** height*width*3. */
  readonly bytes: number;
  get(path: string): Promise<Uint8Array>;
}

export interface LoaderOptions {
  samples: readonly Sample[];
  cache: ImageSource;
  batchSize: number;
  order?: Order;
  seed?: number;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Batches prepared ahead of the one the caller holds (default 2). */
  prefetch?: number;
}

export class Loader {
  readonly samples: readonly Sample[];
  readonly cache: ImageSource;
  readonly batchSize: number;
  readonly order: Order;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;

  constructor(options: LoaderOptions) {
    if (!(options.batchSize >= 1)) throw new RangeError("batchSize must be at least 1");
    this.samples = options.samples;
    this.cache = options.cache;
    this.batchSize = options.batchSize;
    this.order = options.order ?? "shuffle";
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    this.prefetch = Math.max(0, options.prefetch ?? 2);
  }

  get batchesPerEpoch(): number {
    const n = this.samples.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The sample indices of `epoch`, in delivery order. */
  indices(epoch: number): Int32Array {
    const n = this.samples.length;
    const seed = mixSeed(this.seed, epoch);
    if (this.order === "balanced") {
      return balancedIndices(this.samples.map((s) => s.label), n, seed);
    }
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    return this.order === "shuffle" ? new Rng(seed).shuffle(idx) : idx;
  }

  /** The batches of `epoch`, prepared ahead while the caller holds the current one. */
  async *epoch(epoch: number): AsyncGenerator<Batch> {
    const order = this.indices(epoch);
    const count = this.batchesPerEpoch;
    const inflight: Promise<Batch>[] = [];
    let next = 0;
    const fill = () => {
      while (next < count && inflight.length <= this.prefetch) {
        const start = next++ * this.batchSize;
        const p = this.#load(order.subarray(start, Math.min(start + this.batchSize, order.length)));
        p.catch(() => {}); // surfaced when awaited; avoids an unhandled rejection if abandoned
        inflight.push(p);
      }
    };
    fill();
    while (inflight.length) {
      const batch = await inflight.shift()!;
      fill();
      yield batch;
    }
  }

  async #load(indices: Int32Array): Promise<Batch> {
    const { height, width } = this.cache;
    const per = this.cache.bytes;
    const n = indices.length;
    const images = new Uint8Array(n * per);
    const labels = new Int32Array(n);
    const ids: string[] = new Array(n);
    await Promise.all(Array.from(indices, async (s, i) => {
      const sample = this.samples[s];
      images.set(await this.cache.get(sample.path), i * per);
      labels[i] = sample.label;
      ids[i] = sample.id;
    }));
    return { images, labels, ids, n, height, width };
  }
}
