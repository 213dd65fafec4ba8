/** @module WGSL kernels and the WebGPU runtime that launches them. */
export * from "./runtime/gpu.ts";
export * from "./runtime/buffer_pool.ts";
export * from "./runtime/grid.ts";
