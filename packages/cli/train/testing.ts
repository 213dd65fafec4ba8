/** Test helpers: an in-memory image source whose colour depends on the class. */
import type { Sample } from "../../core/data/ham10000.ts";
import type { ImageSource } from "../../core/data/loader.ts";
import { Rng } from "../../core/data/rng.ts";

/** `n` samples over `classes` classes, ids "s0".., paths "0".., labels i % classes. */
export function fakeSamples(n: number, classes = 7): Sample[] {
  return Array.from(
    { length: n },
    (_, i) => ({ id: `s${i}`, path: String(i), label: i % classes }),
  );
}

/**
 * Images of `height` x `width` whose mean colour encodes the label (plus seeded noise), so a
 * small CNN can learn them.
 */
export function fakeSource(samples: readonly Sample[], height = 12, width = 16): ImageSource {
  const bytes = height * width * 3;
  const images = samples.map((s, i) => {
    const rng = new Rng(i + 1);
    const out = new Uint8Array(bytes);
    const base = [(s.label * 37) % 256, (s.label * 91 + 40) % 256, 255 - s.label * 30];
    for (let p = 0; p < height * width; p++) {
      for (let c = 0; c < 3; c++) {
        out[p * 3 + c] = Math.max(0, Math.min(255, base[c] + Math.round((rng.float() - 0.5) * 40)));
      }
    }
    return out;
  });
  return {
    height,
    width,
    bytes,
    get: (path: string) => Promise.resolve(images[Number(path)]),
  };
}
