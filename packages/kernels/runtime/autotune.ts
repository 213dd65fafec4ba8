/**
 * Autotuning: choose among a kernel's candidate configs by timing each one the first time a
 * (adapter, op, shape) is seen, and remember the winner in a JSON file
 * (`$XDG_CACHE_HOME/dermagpu/autotune-<adapter-slug>.json`, `~/.cache/...` without
 * XDG_CACHE_HOME), so later processes reuse it without timing anything.
 *
 * Off by default, so tests and ordinary runs are deterministic: enable with
 * `DERMAGPU_AUTOTUNE=1` or `new Autotuner(g, { enabled: true })`. When off, `choose()` returns
 * the fallback config and neither times nor reads the cache.
 *
 * Kernel launches are synchronous, timing is not: `choose()` (async) tunes ahead of time, e.g.
 * during a warm-up step, and `lookup()` (sync) is what a launch function can call to use a
 * decision already made (cached winner, or undefined).
 */
import type { Gpu } from "./gpu.ts";
import { median, timeRecorded } from "./timer.ts";

export interface Candidate<C> {
  /** Stable name of the config (what the cache stores). */
  name: string;
  config: C;
}

export interface TuneEntry {
  winner: string;
  /** Median ms per candidate name (Infinity where a candidate failed). */
  ms: Record<string, number>;
  date: string;
}

interface CacheFile {
  version: 1;
  adapter: string;
  entries: Record<string, TuneEntry>;
}

export interface AutotuneOptions {
  /** Default: DERMAGPU_AUTOTUNE is "1" (or "true"). */
  enabled?: boolean;
  /** Cache file; default `defaultCachePath(adapter name)`. null: memory only. */
  cachePath?: string | null;
  iterations?: number;
  warmup?: number;
  /**
   * How a candidate is timed (ms): default records `run(config)` `iterations` times after
   * `warmup` runs and takes the median GPU time (timer.ts). Injected by tests.
   */
  measure?: (run: () => void) => Promise<number>;
}

/** Lower-case adapter name with runs of other characters replaced by "-". */
export function adapterSlug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "unknown";
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env
  }
}

/** `$XDG_CACHE_HOME/dermagpu/autotune-<slug>.json` (or under `$HOME/.cache`). */
export function defaultCachePath(adapterName: string): string {
  const base = env("XDG_CACHE_HOME") || `${env("HOME") ?? "."}/.cache`;
  return `${base}/dermagpu/autotune-${adapterSlug(adapterName)}.json`;
}

/** Whether DERMAGPU_AUTOTUNE asks for tuning. */
export function autotuneFromEnv(): boolean {
  const v = env("DERMAGPU_AUTOTUNE")?.toLowerCase();
  return v === "1" || v === "true";
}

export class Autotuner {
  readonly enabled: boolean;
  readonly cachePath: string | null;
  /** Candidates timed by this instance (for tests and logs). */
  measured = 0;
  #entries: Record<string, TuneEntry> | null = null;

  constructor(private g: Gpu, private opts: AutotuneOptions = {}) {
    this.enabled = opts.enabled ?? autotuneFromEnv();
    this.cachePath = opts.cachePath === undefined ? defaultCachePath(g.info.name) : opts.cachePath;
  }

  static key(op: string, shape: string): string {
    return `${op}|${shape}`;
  }

  /** The cached decision for (op, shape), if tuning is on and it was made before. */
  lookup<C>(op: string, shape: string, candidates: readonly Candidate<C>[]): C | undefined {
    if (!this.enabled) return undefined;
    const e = this.#load()[Autotuner.key(op, shape)];
    return candidates.find((c) => c.name === e?.winner)?.config;
  }

  /** The cache entry (timings) for (op, shape), if any. */
  entry(op: string, shape: string): TuneEntry | undefined {
    return this.#load()[Autotuner.key(op, shape)];
  }

  /**
   * The best candidate for (op, shape): the cached winner, else the fastest after timing each
   * (`run` records one launch of a config; a candidate that throws is skipped); `fallback`
   * when tuning is off. The decision is written to the cache file.
   */
  async choose<C>(
    op: string,
    shape: string,
    candidates: readonly Candidate<C>[],
    run: (config: C) => void,
    fallback: C,
  ): Promise<C> {
    if (!this.enabled || candidates.length === 0) return fallback;
    const cached = this.lookup(op, shape, candidates);
    if (cached !== undefined) return cached;
    const ms: Record<string, number> = {};
    let best: Candidate<C> | null = null;
    for (const c of candidates) {
      let t: number;
      try {
        t = await this.#measure(() => run(c.config));
        this.g.check();
      } catch {
        t = Infinity;
      }
      this.measured++;
      ms[c.name] = t;
      if (Number.isFinite(t) && (!best || t < ms[best.name])) best = c;
    }
    if (!best) return fallback;
    this.#load()[Autotuner.key(op, shape)] = {
      winner: best.name,
      ms,
      date: new Date().toISOString(),
    };
    await this.#save();
    return best.config;
  }

  #measure(run: () => void): Promise<number> {
    if (this.opts.measure) return this.opts.measure(run);
    return timeRecorded(this.g, run, {
      iterations: this.opts.iterations ?? 3,
      warmup: this.opts.warmup ?? 1,
    }).then(median);
  }

  #load(): Record<string, TuneEntry> {
    if (this.#entries) return this.#entries;
    this.#entries = {};
    if (!this.cachePath) return this.#entries;
    try {
      const file = JSON.parse(Deno.readTextFileSync(this.cachePath)) as CacheFile;
      if (file?.version === 1 && file.entries && typeof file.entries === "object") {
        this.#entries = file.entries;
      }
    } catch {
      // Missing or unreadable cache: start empty (it is rewritten on the next decision).
    }
    return this.#entries;
  }

  async #save(): Promise<void> {
    if (!this.cachePath) return;
    const file: CacheFile = { version: 1, adapter: this.g.info.name, entries: this.#load() };
    const dir = this.cachePath.slice(0, Math.max(0, this.cachePath.lastIndexOf("/")));
    try {
      if (dir) await Deno.mkdir(dir, { recursive: true });
      const tmp = `${this.cachePath}.${Deno.pid}.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify(file, null, 1) + "\n");
      await Deno.rename(tmp, this.cachePath);
    } catch (e) {
      // An unwritable cache only costs re-tuning next time.
      console.warn(`autotune: could not write ${this.cachePath}: ${(e as Error).message}`);
    }
  }
}
