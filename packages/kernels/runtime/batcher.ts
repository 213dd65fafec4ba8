/**
 * Records many dispatches into one compute pass and submits them in batches. Nothing is
 * read back here: `flush()` only hands the recorded work to the queue.
 */
export class Batcher {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #recorded = 0;
  /** Dispatches recorded since the GPU runtime started (for tests and benchmarks). */
  dispatches = 0;
  submits = 0;

  constructor(private device: GPUDevice, private maxPerSubmit = 512) {}

  get pending(): number {
    return this.#recorded;
  }

  dispatch(
    pipeline: GPUComputePipeline,
    buffers: GPUBuffer[],
    workgroups: readonly [number, number, number],
  ): void {
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    if (!this.#pass) {
      this.#encoder ??= this.device.createCommandEncoder();
      this.#pass = this.#encoder.beginComputePass();
    }
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, bindGroup);
    this.#pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    this.#recorded++;
    this.dispatches++;
    if (this.#recorded >= this.maxPerSubmit) this.flush();
  }

  /** Ends the open pass (if any) and returns its encoder for non-compute commands. */
  encoder(): GPUCommandEncoder {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    return this.#encoder;
  }

  flush(): void {
    if (!this.#encoder) return;
    if (this.#pass) this.#pass.end();
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#pass = null;
    this.#recorded = 0;
    this.submits++;
  }
}
