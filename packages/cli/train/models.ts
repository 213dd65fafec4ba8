/**
 * The models `train` and `evaluate` build by name: the four torchvision architectures of the
 * registry, plus `tiny` (TinyNet, for tests and smoke runs).
 */
import { UserError } from "../../core/errors.ts";
import type { Module } from "../../core/nn/module.ts";
import { MODEL_NAMES, MODELS } from "../../models/registry.ts";
import { mobilenetV2 } from "../../models/mobilenet_v2.ts";
import { TinyNet } from "./tiny_model.ts";

/** The study's four models, in the order they are trained. */
export const STUDY_MODELS: readonly string[] = MODEL_NAMES;

/** Every name `--model` accepts. */
export const MODEL_CHOICES: readonly string[] = [...MODEL_NAMES, "tiny"];

/** A model with a classifier head prefix (every model built here has one). */
export type TrainableModel = Module & { readonly headPrefix: string };

/** How a model is built beyond its name: TensorFlow "SAME" padding (TF-slim weights). */
export interface BuildOptions {
  /** Pad as TensorFlow does (only mobilenet_v2 has the option). */
  tfPadding?: boolean;
}

/** Builds `name` with `numClasses` outputs, weights seeded by `seed`. */
export function buildModel(
  name: string,
  numClasses: number,
  seed: number,
  opts: BuildOptions = {},
): TrainableModel {
  if (opts.tfPadding) {
    if (name !== "mobilenet_v2") {
      throw new UserError(
        `${name}: TensorFlow padding (TF-slim weights) exists only for mobilenet_v2; use a ` +
          `mobilenet_v2 checkpoint or --pretrained tfslim with --model mobilenet_v2`,
      );
    }
    return mobilenetV2({ numClasses, seed, tfPadding: true });
  }
  if (name === "tiny") return new TinyNet({ numClasses, seed });
  const spec = (MODELS as Record<string, (typeof MODELS)[keyof typeof MODELS]>)[name];
  if (!spec) {
    throw new UserError(
      `--model ${name}: unknown model; choose one of ${MODEL_CHOICES.join(", ")}`,
    );
  }
  return spec.build({ numClasses, seed });
}

/** torchvision's ImageNet weight URL of `name`, if it has one. */
export function weightsUrl(name: string): string | undefined {
  return (MODELS as Record<string, { weightsUrl: string }>)[name]?.weightsUrl;
}

/** The smallest input side `name` supports. */
export function minInputSize(name: string): number {
  return (MODELS as Record<string, { minInputSize: number }>)[name]?.minInputSize ?? 8;
}
