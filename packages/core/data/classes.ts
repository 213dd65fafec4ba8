/**
 * The seven HAM10000 diagnoses. Our class index is the alphabetical order of the `dx` codes:
 * akiec 0, bcc 1, bkl 2, df 3, mel 4, nv 5, vasc 6.
 */
export const CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"] as const;

export type ClassCode = typeof CLASSES[number];

/** Display names, by class index. */
export const CLASS_NAMES: readonly string[] = [
  "Actinic keratoses",
  "Basal cell carcinoma",
  "Benign keratosis-like lesions",
  "Dermatofibroma",
  "Melanoma",
  "Melanocytic nevi",
  "Vascular lesions",
];

export const NUM_CLASSES = CLASSES.length;

const INDEX = new Map<string, number>(CLASSES.map((c, i) => [c, i]));

/** The class index of a `dx` code (case-insensitive), or -1 when it is not one of the seven. */
export function classIndex(dx: string): number {
  return INDEX.get(dx.trim().toLowerCase()) ?? -1;
}
