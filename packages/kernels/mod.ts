/**
 * @module @dermagpu/kernels — the WebGPU runtime and the WGSL kernels, each op family with
 * its generators, launch functions and f64 CPU reference.
 */
export * from "./runtime/gpu.ts";
export * from "./runtime/buffer_pool.ts";
export * from "./runtime/grid.ts";
export * as batchnorm from "./ops/batchnorm.ts";
export * as conv2d from "./ops/conv2d.ts";
export * as depthwise from "./ops/depthwise.ts";
export * as dropout from "./ops/dropout.ts";
export * as elementwise from "./ops/elementwise.ts";
export * as gemm from "./ops/gemm.ts";
export * as matmul from "./ops/matmul.ts";
export * as optim from "./ops/optim.ts";
export * as pool from "./ops/pool.ts";
export * as reduce from "./ops/reduce.ts";
export * as shape from "./ops/shape.ts";
export * as softmax from "./ops/softmax.ts";
export * as structure from "./ops/structure.ts";
