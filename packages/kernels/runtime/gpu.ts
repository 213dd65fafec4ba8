/**
 * The one place that owns the WebGPU adapter and device. Everything that launches a kernel
 * goes through `gpu()`: buffer pool, pipeline cache and the dispatch batcher.
 */
import { BufferPool } from "./buffer_pool.ts";
import { PipelineCache } from "./pipeline_cache.ts";
import { Batcher } from "./batcher.ts";

export interface GpuInfo {
  /** Adapter description, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  name: string;
  /** True for a software adapter (llvmpipe, lavapipe, SwiftShader). */
  isFallback: boolean;
  subgroups: boolean;
  subgroupMinSize: number;
  subgroupMaxSize: number;
  f16: boolean;
  timestamps: boolean;
  maxStorageBuffersPerShaderStage: number;
  maxBufferSize: number;
  maxWorkgroupStorageSize: number;
}

export class GpuError extends Error {}

export class Gpu {
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly batcher: Batcher;
  #lost: string | null = null;
  #error: string | null = null;

  constructor(readonly device: GPUDevice, readonly info: GpuInfo) {
    this.pool = new BufferPool(device, device.limits.maxStorageBufferBindingSize);
    this.pipelines = new PipelineCache(device);
    this.batcher = new Batcher(device);
    device.lost.then((e) => {
      this.#lost = `the GPU device was lost (${e.reason}): ${e.message || "no details"}`;
    });
    device.addEventListener("uncapturederror", (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      if (this.#error) return;
      this.#error = err instanceof GPUOutOfMemoryError
        ? "the GPU ran out of memory: try a smaller --batch-size or --image-size"
        : `GPU error: ${err.message}`;
    });
  }

  /** Throws if the device was lost or reported an error since the last check. */
  check(): void {
    if (this.#lost) throw new GpuError(this.#lost);
    if (this.#error) {
      const msg = this.#error;
      this.#error = null;
      throw new GpuError(msg);
    }
  }

  /** Records one dispatch of `code` (cached pipeline) with `buffers` bound in order. */
  run(code: string, buffers: GPUBuffer[], workgroups: readonly [number, number, number]): void {
    if (this.#lost) throw new GpuError(this.#lost);
    this.batcher.dispatch(this.pipelines.get(code), buffers, workgroups);
  }

  /** A pooled buffer holding `data`. Pending work is submitted first so it keeps its inputs. */
  upload(data: ArrayBufferView): GPUBuffer {
    const buffer = this.pool.acquire(data.byteLength);
    this.write(buffer, data);
    return buffer;
  }

  /** Overwrites `buffer` from the CPU after submitting the work recorded so far. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    if (this.batcher.pending) this.batcher.flush();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // writeBuffer needs a multiple of 4 bytes.
    const padded = bytes.byteLength % 4 ? padTo4(bytes) : bytes;
    this.device.queue.writeBuffer(buffer, offset, padded as Uint8Array<ArrayBuffer>);
  }

  /** Copies `bytes` from `buffer` back to the CPU. The only way data leaves the GPU. */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    this.check();
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({
      size: Math.max(4, size),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.batcher.encoder().copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.batcher.flush();
    const lost = this.device.lost.then((e) => {
      throw new GpuError(`the GPU device was lost (${e.reason}) while reading a result`);
    });
    await Promise.race([staging.mapAsync(GPUMapMode.READ), lost]);
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    this.check();
    return out;
  }

  /**
   * Gives the pool's free buffers back to the driver (between models, say), after submitting
   * the work recorded so far so nothing pending refers to them.
   */
  trim(): void {
    this.batcher.flush();
    this.pool.trim();
  }

  /** Waits until the GPU has finished everything submitted. */
  async sync(): Promise<void> {
    this.batcher.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }
}

function padTo4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(bytes);
  return out;
}

let current: Gpu | null = null;
let pending: Promise<Gpu> | null = null;

const WANTED_FEATURES = ["subgroups", "shader-f16", "timestamp-query"] as const;

/** Acquires the adapter and device once; later calls return the same runtime. */
export function initGpu(): Promise<Gpu> {
  if (current) return Promise.resolve(current);
  pending ??= requestGpu().then((g) => current = g).finally(() => pending = null);
  return pending;
}

/** The runtime acquired by `initGpu()`. */
export function gpu(): Gpu {
  if (!current) throw new GpuError("the GPU runtime is not initialised: await initGpu() first");
  return current;
}

/** A new runtime on a freshly requested adapter and device (initGpu() shares one). */
export async function requestGpu(): Promise<Gpu> {
  await quietDriverWarnings();
  if (!("gpu" in navigator) || !navigator.gpu) {
    throw new GpuError(
      "WebGPU is not available in this runtime: run with Deno 2 (npx -y deno@2.9.6 ...)",
    );
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new GpuError(
      "no WebGPU adapter found: install a GPU driver with Vulkan support, or Mesa's software " +
        "rasterizer (apt-get install mesa-vulkan-drivers) to run on the CPU",
    );
  }
  // Deno reports subgroups through adapter.info rather than the feature list on some drivers.
  const offered = new Set<string>(adapter.features as unknown as Iterable<string>);
  const info = adapter.info as GPUAdapterInfo & {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    isFallbackAdapter?: boolean;
  };
  const features = WANTED_FEATURES.filter((f) =>
    offered.has(f) || (f === "subgroups" && hasSubgroups(info, offered))
  );
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredFeatures: features as GPUFeatureName[],
      requiredLimits,
    });
  } catch {
    // Retry without the optional feature that a driver advertised but could not enable.
    const safe = features.filter((f) => f !== "subgroups");
    device = await adapter.requestDevice({
      requiredFeatures: safe as GPUFeatureName[],
      requiredLimits,
    });
  }
  const enabled = new Set<string>(device.features as unknown as Iterable<string>);
  const name = info.description || info.device || info.vendor || "unknown adapter";
  return new Gpu(device, {
    name,
    isFallback: Boolean(info.isFallbackAdapter) || /llvmpipe|lavapipe|swiftshader/i.test(name),
    subgroups: enabled.has("subgroups"),
    subgroupMinSize: info.subgroupMinSize ?? 0,
    subgroupMaxSize: info.subgroupMaxSize ?? 0,
    f16: enabled.has("shader-f16"),
    timestamps: enabled.has("timestamp-query"),
    maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
    maxBufferSize: device.limits.maxStorageBufferBindingSize,
    maxWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
  });
}

/**
 * Mesa's Vulkan and GL drivers print "error: XDG_RUNTIME_DIR is invalid or not set" when the
 * variable is missing (containers, CI). Point it at a private folder before the driver loads.
 */
async function quietDriverWarnings(): Promise<void> {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
    const dir = `/tmp/xdg-runtime-${Deno.uid() ?? "user"}`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // Without env/write permission the warning stays; nothing else depends on it.
  }
}

/** Subgroups are usable where the adapter reports a fixed, known subgroup size range. */
function hasSubgroups(
  info: { subgroupMinSize?: number; subgroupMaxSize?: number },
  offered: Set<string>,
): boolean {
  if (offered.has("subgroups")) return true;
  const min = info.subgroupMinSize ?? 0, max = info.subgroupMaxSize ?? 0;
  return min > 0 && max > 0 && max <= 128;
}
