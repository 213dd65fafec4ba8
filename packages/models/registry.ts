/**
 * The four architectures by name, with their torchvision 0.14 ImageNet (IMAGENET1K_V1) weight
 * URLs and the state_dict prefix of the head that `numClasses` replaces.
 */
import type { ImageClassifier, ModelOptions } from "./classifier.ts";
import { resnet18 } from "./resnet.ts";
import { densenet121 } from "./densenet.ts";
import { mobilenetV2 } from "./mobilenet_v2.ts";
import { efficientnetB0 } from "./efficientnet.ts";

export type ModelName = "resnet18" | "densenet121" | "mobilenet_v2" | "efficientnet_b0";

export interface ModelSpec {
  name: ModelName;
  build: (opts?: ModelOptions) => ImageClassifier;
  /** torchvision's IMAGENET1K_V1 checkpoint. */
  weightsUrl: string;
  /** The head's state_dict key prefix (skipped when loading ImageNet weights for 7 classes). */
  headPrefix: string;
  /** Parameters with the 1000-class ImageNet head (torchvision's count). */
  imagenetParams: number;
  /** The smallest input side the downsampling supports. */
  minInputSize: number;
}

export const MODELS: Readonly<Record<ModelName, ModelSpec>> = {
  resnet18: {
    name: "resnet18",
    build: resnet18,
    weightsUrl: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    headPrefix: "fc.",
    imagenetParams: 11_689_512,
    minInputSize: 32,
  },
  densenet121: {
    name: "densenet121",
    build: densenet121,
    weightsUrl: "https://download.pytorch.org/models/densenet121-a639ec97.pth",
    headPrefix: "classifier.",
    imagenetParams: 7_978_856,
    minInputSize: 32,
  },
  mobilenet_v2: {
    name: "mobilenet_v2",
    build: mobilenetV2,
    weightsUrl: "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    headPrefix: "classifier.1.",
    imagenetParams: 3_504_872,
    minInputSize: 32,
  },
  efficientnet_b0: {
    name: "efficientnet_b0",
    build: efficientnetB0,
    weightsUrl: "https://download.pytorch.org/models/efficientnet_b0_rwightman-3dd342df.pth",
    headPrefix: "classifier.1.",
    imagenetParams: 5_288_548,
    minInputSize: 32,
  },
};

export const MODEL_NAMES: readonly ModelName[] = Object.keys(MODELS) as ModelName[];

export function isModelName(s: string): s is ModelName {
  return Object.hasOwn(MODELS, s);
}

/** Builds a model by name; unknown names list the known ones. */
export function createModel(name: string, opts: ModelOptions = {}): ImageClassifier {
  if (!isModelName(name)) {
    throw new Error(`unknown model '${name}': choose one of ${MODEL_NAMES.join(", ")}`);
  }
  return MODELS[name].build(opts);
}
