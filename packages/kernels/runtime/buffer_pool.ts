/**
 * Size-bucketed pool of storage buffers. Sizes round up to a quarter-octave bucket
 * (at most 25% slack), so a training step that asks for the same shapes every step
 * reuses the same buffers and allocates nothing after the first step.
 */

export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;

/** Bucket size in bytes for a request: 256-byte minimum, four buckets per power of two. */
export function bucketSize(bytes: number): number {
  if (bytes <= 256) return 256;
  const octave = 2 ** Math.floor(Math.log2(bytes));
  const quarter = octave / 4;
  return Math.ceil(bytes / quarter) * quarter;
}

export class BufferPool {
  #free = new Map<number, GPUBuffer[]>();
  #live = new Set<GPUBuffer>();
  bytesInUse = 0;
  bytesPooled = 0;
  peakBytesInUse = 0;
  allocations = 0;

  constructor(private device: GPUDevice, private maxBufferSize: number) {}

  acquire(bytes: number): GPUBuffer {
    const size = bucketSize(Math.max(4, bytes));
    if (size > this.maxBufferSize) {
      throw new Error(
        `a tensor of ${(bytes / 2 ** 20).toFixed(1)} MiB exceeds this GPU's largest buffer ` +
          `(${
            (this.maxBufferSize / 2 ** 20).toFixed(0)
          } MiB): use a smaller batch size or image size`,
      );
    }
    const stack = this.#free.get(size);
    let buffer = stack?.pop();
    if (buffer) {
      this.bytesPooled -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
      this.allocations++;
    }
    this.#live.add(buffer);
    this.bytesInUse += size;
    this.peakBytesInUse = Math.max(this.peakBytesInUse, this.bytesInUse);
    return buffer;
  }

  /** Returns a buffer for reuse. Work already recorded against it still sees its old contents. */
  release(buffer: GPUBuffer): void {
    if (!this.#live.delete(buffer)) throw new Error("buffer released twice or not from this pool");
    const size = buffer.size;
    this.bytesInUse -= size;
    this.bytesPooled += size;
    let stack = this.#free.get(size);
    if (!stack) this.#free.set(size, stack = []);
    stack.push(buffer);
  }

  /** Destroys every pooled (free) buffer, giving the memory back to the driver. */
  trim(): void {
    for (const stack of this.#free.values()) for (const b of stack) b.destroy();
    this.#free.clear();
    this.bytesPooled = 0;
  }
}
