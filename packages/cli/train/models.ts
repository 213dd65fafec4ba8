/**
 * The models `train` and `evaluate` build by name: the four torchvision architectures of the
 * registry, plus `tiny` (TinyNet, for tests and smoke runs).
 */
import { UserError } from "../../core/errors.ts";
import type { Module } from "../../core/nn/module.ts";
import { MODEL_NAMES, MODELS } from "../../models/registry.ts";
import { TinyNet } from "./tiny_model.ts";

/** The study's four models, in the order they are trained. */
export const STUDY_MODELS: readonly string[] = MODEL_NAMES;

/** Every name `--model` accepts. */
export const MODEL_CHOICES: readonly string[] = [...MODEL_NAMES, "tiny"];

/** A model with a classifier head prefix (every model built here has one). */
export type TrainableModel = Module & { readonly headPrefix: string };

/** Builds `name` with `numClasses` outputs, weights seeded by `seed`. */
export function buildModel(name: string, numClasses: number, seed: number): TrainableModel {
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
