/** Compute pipelines keyed by WGSL source, entry point and override constants. */
export class PipelineCache {
  #pipelines = new Map<string, GPUComputePipeline>();

  constructor(private device: GPUDevice) {}

  get size(): number {
    return this.#pipelines.size;
  }

  get(code: string, entryPoint = "main", constants?: Record<string, number>): GPUComputePipeline {
    const key = constants
      ? `${entryPoint}|${JSON.stringify(constants)}|${code}`
      : `${entryPoint}|${code}`;
    let pipeline = this.#pipelines.get(key);
    if (!pipeline) {
      const module = this.device.createShaderModule({ code });
      pipeline = this.device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint, constants },
      });
      this.#pipelines.set(key, pipeline);
    }
    return pipeline;
  }
}
