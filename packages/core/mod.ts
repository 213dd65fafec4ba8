/**
 * @module @dermagpu/core — tensors on the GPU, the autodiff tape, differentiable ops,
 * modules, optimizers, metrics, file formats and the HAM10000 data pipeline.
 */
export * from "./tensor.ts";
export * from "./scope.ts";
export * from "./autograd.ts";
export * from "./errors.ts";
export * from "./ops/elementwise.ts";
export * from "./ops/reduce.ts";
export * from "./ops/shape.ts";
export * from "./ops/matmul.ts";
export * from "./ops/softmax.ts";
export * from "./ops/dropout.ts";
export * from "./ops/conv.ts";
export * from "./ops/batchnorm.ts";
export * from "./ops/pool.ts";
export * from "./ops/structure.ts";
export * from "./nn/module.ts";
export * from "./nn/linear.ts";
export * from "./optim/optimizer.ts";
export * from "./optim/adam.ts";
export * from "./optim/sgd.ts";
export * from "./optim/scheduler.ts";
export * from "./data/classes.ts";
export * from "./data/rng.ts";
export * from "./data/ham10000.ts";
export * from "./data/split.ts";
export * from "./data/loader.ts";
export * from "./data/image_cache.ts";
export * from "./metrics/evaluate.ts";
export * from "./metrics/run_results.ts";
export * from "./metrics/comparison_table.ts";
