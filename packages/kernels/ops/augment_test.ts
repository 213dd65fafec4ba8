import assert from "node:assert/strict";
import fc from "fast-check";
import { initGpu } from "../runtime/gpu.ts";
import {
  augmentBatch,
  augmentBatchCpu,
  type AugmentBatchOptions,
  evalParams,
  hueShiftCpu,
  type ImageParams,
  needsColorPass,
  randomResizedCropBox,
  sampleAugmentParams,
} from "./augment.ts";
import { assertClose, randomArray, readF32 } from "./testing.ts";

const g = await initGpu();
const SEED = Number(Deno.env.get("FC_SEED") ?? 20240611);

/** A seeded uniform source (same mulberry32 stream as testing.ts's randomArray). */
function uniform(seed: number) {
  const values = randomArray(10000, seed, 0, 1);
  let i = 0;
  return { float: () => values[i++ % values.length] };
}

function randomBytes(count: number, seed: number): Uint8Array {
  return Uint8Array.from(randomArray(count, seed, 0, 256), Math.floor);
}

const IDENTITY: Omit<ImageParams, "y0" | "x0" | "h" | "w"> = {
  hflip: false,
  vflip: false,
  angle: 0,
  brightness: 1,
  contrast: 1,
  saturation: 1,
  hue: 0,
};

async function gpuAugment(u8: Uint8Array, o: AugmentBatchOptions): Promise<Float32Array> {
  const src = g.upload(u8);
  const out = augmentBatch(g, src, o);
  const values = await readF32(g, out, o.n * o.outH * o.outW * 3);
  g.pool.release(src);
  g.pool.release(out);
  return values;
}

/** Smallest distance of a rotated output pixel centre to the image border (precondition). */
function rotationMargin(o: AugmentBatchOptions): number {
  let m = Infinity;
  for (const p of o.params) {
    const a = p.angle * Math.PI / 180;
    for (let oy = 0; oy < o.outH; oy++) {
      for (let ox = 0; ox < o.outW; ox++) {
        const dx = ox + 0.5 - o.outW / 2, dy = oy + 0.5 - o.outH / 2;
        const qx = o.outW / 2 + dx * Math.cos(a) - dy * Math.sin(a);
        const qy = o.outH / 2 + dx * Math.sin(a) + dy * Math.cos(a);
        m = Math.min(m, Math.abs(qx), Math.abs(qy), Math.abs(qx - o.outW), Math.abs(qy - o.outH));
      }
    }
  }
  return m;
}

Deno.test("augment CPU reference: full-image box without jitter is plain normalisation", () => {
  const [n, h, w] = [2, 12, 16];
  const u8 = randomBytes(n * h * w * 3, 1);
  const params = Array.from({ length: n }, () => ({ y0: 0, x0: 0, h, w, ...IDENTITY }));
  const o = { n, inH: h, inW: w, outH: h, outW: w, params, normalize: "imagenet" as const };
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const expected = Array.from(u8, (v, i) => (v / 255 - mean[i % 3]) / std[i % 3]);
  assertClose(augmentBatchCpu(u8, o), expected, 1e-12, "identity");
  const m1 = augmentBatchCpu(u8, { ...o, normalize: "minus1to1" });
  assertClose(m1, Array.from(u8, (v) => v / 127.5 - 1), 1e-12, "minus1to1");
});

Deno.test("augment CPU reference: flips mirror and 90 degrees rotates counter-clockwise", () => {
  const s = 8;
  const u8 = randomBytes(s * s * 3, 2);
  const base = { n: 1, inH: s, inW: s, outH: s, outW: s, normalize: "minus1to1" as const };
  const run = (p: Partial<ImageParams>) =>
    augmentBatchCpu(u8, { ...base, params: [{ y0: 0, x0: 0, h: s, w: s, ...IDENTITY, ...p }] });
  const plain = run({});
  const at = (a: Float64Array, y: number, x: number, c: number) => a[(y * s + x) * 3 + c];
  const hf = run({ hflip: true }), vf = run({ vflip: true }), rot = run({ angle: 90 });
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      for (let c = 0; c < 3; c++) {
        assert.ok(Math.abs(at(hf, y, x, c) - at(plain, y, s - 1 - x, c)) < 1e-9, "hflip");
        assert.ok(Math.abs(at(vf, y, x, c) - at(plain, s - 1 - y, x, c)) < 1e-9, "vflip");
        // Counter-clockwise: the top row becomes the left column, the top-right corner top-left.
        assert.ok(Math.abs(at(rot, y, x, c) - at(plain, x, s - 1 - y, c)) < 1e-9, "rotate 90");
      }
    }
  }
});

Deno.test("hue shift CPU: red -> green at 1/3 turn, and shifting back restores the colour", () => {
  assertClose(hueShiftCpu([1, 0, 0], 1 / 3), [0, 1, 0], 1e-12, "red to green");
  assertClose(hueShiftCpu([0.2, 0.4, 0.9], 0), [0.2, 0.4, 0.9], 1e-12, "zero shift");
  fc.assert(
    fc.property(
      fc.tuple(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
      ),
      fc.double({ min: -0.5, max: 0.5, noNaN: true }),
      (rgb, shift) => {
        const back = hueShiftCpu(hueShiftCpu(rgb, shift), -shift);
        assertClose(back, rgb, 1e-9, "round trip");
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

Deno.test("RandomResizedCrop boxes stay inside the image and follow scale/ratio bounds", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.integer({ min: 1, max: 300 }),
      fc.integer({ min: 1, max: 1 << 30 }),
      (inH, inW, seed) => {
        const b = randomResizedCropBox(uniform(seed), inH, inW);
        assert.ok(Number.isInteger(b.y0) && Number.isInteger(b.h) && b.h >= 1 && b.w >= 1);
        assert.ok(b.y0 >= 0 && b.x0 >= 0 && b.y0 + b.h <= inH && b.x0 + b.w <= inW);
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
  // A 1x300 strip can never fit ratio [3/4, 4/3] crops: the centre-crop fallback clips the width.
  const strip = randomResizedCropBox(uniform(3), 1, 300);
  assert.deepEqual(strip, { y0: 0, x0: 149, h: 1, w: 1 });
  // With scale fixed at 1 and ratio at the image's own, the crop is the whole image.
  const whole = randomResizedCropBox(uniform(4), 150, 200, [1, 1], [4 / 3, 4 / 3]);
  assert.deepEqual(whole, { y0: 0, x0: 0, h: 150, w: 200 });
});

Deno.test("sampleAugmentParams is reproducible and within the requested ranges", () => {
  const opts = {
    hflip: 0.5,
    vflip: 0.5,
    degrees: 20,
    brightness: 0.2,
    contrast: 0.3,
    saturation: 0.4,
    hue: 0.1,
  };
  const a = sampleAugmentParams(uniform(7), 64, 150, 200, opts);
  const b = sampleAugmentParams(uniform(7), 64, 150, 200, opts);
  assert.deepEqual(a, b);
  for (const p of a) {
    assert.ok(Math.abs(p.angle) <= 20 && Math.abs(p.hue) <= 0.1);
    assert.ok(p.brightness >= 0.8 && p.brightness <= 1.2);
    assert.ok(p.contrast >= 0.7 && p.contrast <= 1.3);
    assert.ok(p.saturation >= 0.6 && p.saturation <= 1.4);
  }
  assert.ok(a.some((p) => p.hflip) && a.some((p) => !p.hflip), "both flip outcomes occur");
  const plain = sampleAugmentParams(uniform(7), 8, 150, 200);
  assert.ok(plain.every((p) => !p.vflip && p.angle === 0 && !needsColorPass([p])));
});

Deno.test("evalParams: torchvision Resize(256) + CenterCrop(224) box on a 150x200 image", () => {
  const [p] = evalParams(1, 150, 200, 224, 224);
  // Resized to 256x341; top = round(16) = 16; left = round(58.5) = 58 (halves to even).
  const sy = 150 / 256, sx = 200 / 341;
  assertClose([p.y0, p.x0, p.h, p.w], [16 * sy, 58 * sx, 224 * sy, 224 * sx], 1e-12, "box");
});

Deno.test("GPU augment matches the CPU reference: eval transform (one dispatch)", async () => {
  const [n, inH, inW, outH, outW] = [3, 12, 16, 8, 8];
  const u8 = randomBytes(n * inH * inW * 3, 11);
  const o = {
    n,
    inH,
    inW,
    outH,
    outW,
    params: evalParams(n, inH, inW, outH, outW),
    normalize: "imagenet" as const,
  };
  const before = g.batcher.dispatches;
  const out = await gpuAugment(u8, o);
  assert.equal(g.batcher.dispatches - before, 1);
  assertClose(out, augmentBatchCpu(u8, o), 2e-4, "eval");
});

Deno.test("GPU augment matches the CPU reference: crops, flips, rotation, brightness", async () => {
  const [n, inH, inW, outH, outW] = [4, 12, 16, 10, 9];
  const u8 = randomBytes(n * inH * inW * 3, 12);
  const params: ImageParams[] = [
    { y0: 2, x0: 3, h: 7, w: 9, ...IDENTITY, hflip: true, brightness: 1.3 },
    { y0: 0, x0: 0, h: 12, w: 16, ...IDENTITY, vflip: true, angle: 17, brightness: 0.7 },
    { y0: 4, x0: 1, h: 5, w: 4, ...IDENTITY, hflip: true, vflip: true, angle: -33 },
    { y0: 1.25, x0: 2.5, h: 9.5, w: 11, ...IDENTITY, angle: 180 },
  ];
  const o = { n, inH, inW, outH, outW, params, normalize: "minus1to1" as const };
  assert.ok(rotationMargin(o) > 1e-3, "no pixel centre sits on the rotation border");
  const before = g.batcher.dispatches;
  const out = await gpuAugment(u8, o);
  assert.equal(g.batcher.dispatches - before, 1);
  assertClose(out, augmentBatchCpu(u8, o), 2e-4, "geometry");
});

Deno.test("GPU augment matches the CPU reference: full ColorJitter (two dispatches)", async () => {
  const [n, inH, inW, outH, outW] = [3, 12, 16, 12, 12];
  const u8 = randomBytes(n * inH * inW * 3, 13);
  const params: ImageParams[] = [
    {
      y0: 1,
      x0: 2,
      h: 10,
      w: 12,
      ...IDENTITY,
      brightness: 1.2,
      contrast: 0.6,
      saturation: 1.4,
      hue: 0.12,
    },
    {
      y0: 0,
      x0: 0,
      h: 12,
      w: 16,
      ...IDENTITY,
      hflip: true,
      angle: 25,
      contrast: 1.5,
      saturation: 0.3,
      hue: -0.4,
    },
    {
      y0: 3,
      x0: 3,
      h: 6,
      w: 8,
      ...IDENTITY,
      brightness: 0.8,
      contrast: 1,
      saturation: 1,
      hue: 0.5,
    },
  ];
  const o = { n, inH, inW, outH, outW, params, normalize: "imagenet" as const };
  assert.ok(rotationMargin(o) > 1e-3, "no pixel centre sits on the rotation border");
  const before = g.batcher.dispatches;
  const out = await gpuAugment(u8, o);
  assert.equal(g.batcher.dispatches - before, 2);
  assertClose(out, augmentBatchCpu(u8, o), 5e-4, "jitter");
  // The jitter changed the output (the comparison above is not between two identities).
  const plain = augmentBatchCpu(u8, {
    ...o,
    params: params.map((p) => ({ ...p, contrast: 1, saturation: 1, hue: 0 })),
  });
  assert.ok(plain.some((v, i) => Math.abs(v - out[i]) > 0.05));
});

Deno.test("GPU augment: sampled training params over a batch match the CPU reference", async () => {
  const [n, inH, inW, outH, outW] = [5, 12, 16, 8, 8];
  const u8 = randomBytes(n * inH * inW * 3, 14);
  const params = sampleAugmentParams(uniform(15), n, inH, inW, {
    vflip: 0.5,
    brightness: 0.3,
    contrast: 0.3,
    saturation: 0.3,
    hue: 0.05,
  });
  const o = { n, inH, inW, outH, outW, params, normalize: "imagenet" as const };
  assertClose(await gpuAugment(u8, o), augmentBatchCpu(u8, o), 5e-4, "sampled");
});
