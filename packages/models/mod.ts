/** @module @dermagpu/models — the four torchvision architectures, their registry and weights. */
export * from "./classifier.ts";
export * from "./registry.ts";
export * from "./load_weights.ts";
export { ResNet, resnet18 } from "./resnet.ts";
export { DenseNet, densenet121 } from "./densenet.ts";
export { MobileNetV2, mobilenetV2 } from "./mobilenet_v2.ts";
export { EfficientNet, efficientnetB0 } from "./efficientnet.ts";
