/** The original student study's published test accuracies, the reference dermagpu reproduces. */

/** Setting the original numbers were measured in. */
export const ORIGINAL_STUDY = {
  split: "random image-level 80/10/10",
  optimizer: "Adam, lr 1e-3",
  /** Test accuracy in percent, by the study's model names. */
  testAccuracyPercent: {
    "ResNet18": 74.65,
    "DenseNet121": 79.74,
    "MobileNetV2": 80.34,
    "EfficientNet-B0": 81.04,
  },
} as const;

/** Model name reduced to lowercase letters and digits: "mobilenet_v2" -> "mobilenetv2". */
export function modelKey(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** The study's name and test accuracy (%) for a model name in any spelling; null if not in it. */
export function originalStudyAccuracy(model: string): { name: string; accuracy: number } | null {
  const key = modelKey(model);
  for (const [name, accuracy] of Object.entries(ORIGINAL_STUDY.testAccuracyPercent)) {
    if (modelKey(name) === key) return { name, accuracy };
  }
  return null;
}
