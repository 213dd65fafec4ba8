/**
 * Data augmentation on the GPU: uint8 NHWC batch in (u32-packed, 4 bytes a word), normalised
 * f32 NHWC batch out at the output size.
 *
 * Per output pixel, in this order (torchvision's RandomResizedCrop -> RandomHorizontalFlip ->
 * RandomVerticalFlip -> RandomRotation -> ColorJitter -> ToTensor -> Normalize):
 *   1. geometry, composed into one inverse map and sampled once: undo the rotation (about the
 *      output centre, positive angle = counter-clockwise; points that come from outside the
 *      image are black), undo the flips, map into the crop box (y0, x0, h, w) of the source;
 *   2. bilinear sampling at pixel centres (align_corners=False), clamped at the source image's
 *      border (not the crop box's), no antialiasing; bytes / 255;
 *   3. ColorJitter in a FIXED order (torchvision draws a random order): brightness (x*b),
 *      contrast (blend with the mean grey level of the jittered output image), saturation
 *      (blend with the pixel's grey), hue (shift in HSV), each clamped to [0, 1]; grey =
 *      0.2989 R + 0.587 G + 0.114 B as torchvision's rgb_to_grayscale;
 *   4. normalise: (x - mean) / std per channel.
 * Unlike torchvision on PIL images, nothing is rounded to uint8 between steps.
 *
 * One dispatch when no image has contrast/saturation/hue jitter; otherwise two: pass A samples
 * and applies brightness, writing partial grey sums per tile; pass B finishes the jitter.
 * Eval transform: `evalParams` (resize the shorter side, centre crop) with the same kernel.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, grid1d, gridFor } from "../runtime/grid.ts";

/** Parameters of one image's transform. */
export interface ImageParams {
  /** Crop box in source pixels (edges: pixel i spans [i, i+1)); may be fractional. */
  y0: number;
  x0: number;
  h: number;
  w: number;
  hflip: boolean;
  vflip: boolean;
  /** Rotation in degrees, counter-clockwise. */
  angle: number;
  /** ColorJitter factors: identity is 1, 1, 1, 0. */
  brightness: number;
  contrast: number;
  saturation: number;
  /** Hue shift in [-0.5, 0.5] (fraction of a turn). */
  hue: number;
}

export interface AugmentOptions {
  /** RandomResizedCrop area range (default torchvision's [0.08, 1]). */
  scale?: [number, number];
  /** RandomResizedCrop aspect range w/h (default [3/4, 4/3]). */
  ratio?: [number, number];
  /** Probability of a horizontal / vertical flip (default 0.5 / 0). */
  hflip?: number;
  vflip?: number;
  /** Rotation uniform in [-degrees, degrees] (default 0). */
  degrees?: number;
  /** ColorJitter strengths as torchvision's (default 0: off). */
  brightness?: number;
  contrast?: number;
  saturation?: number;
  hue?: number;
}

/** Anything with a uniform float in [0, 1): core's Rng fits. */
export interface UniformSource {
  float(): number;
}

export type Normalize =
  | "imagenet"
  | "minus1to1"
  | { mean: readonly [number, number, number]; std: readonly [number, number, number] };

export interface AugmentShape {
  n: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
}

export interface AugmentBatchOptions extends AugmentShape {
  params: readonly ImageParams[];
  normalize: Normalize;
}

/** Floats per image in the parameter buffer. */
export const PARAM_STRIDE = 12;

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
const MINUS1TO1 = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } as const;
const GREY = [0.2989, 0.587, 0.114] as const;
/** Output pixels per thread and threads per workgroup in pass A. */
const PER_THREAD = 4;
const WG = 256;

function meanStd(n: Normalize) {
  return n === "imagenet" ? IMAGENET : n === "minus1to1" ? MINUS1TO1 : n;
}

/** Python's round(): halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision RandomResizedCrop.get_params: 10 tries, then a centre-crop fallback. */
export function randomResizedCropBox(
  rng: UniformSource,
  inH: number,
  inW: number,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): { y0: number; x0: number; h: number; w: number } {
  const area = inH * inW;
  const logLo = Math.log(ratio[0]), logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * rng.float());
    const aspect = Math.exp(logLo + (logHi - logLo) * rng.float());
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= inW && h > 0 && h <= inH) {
      const y0 = Math.floor(rng.float() * (inH - h + 1));
      const x0 = Math.floor(rng.float() * (inW - w + 1));
      return { y0, x0, h, w };
    }
  }
  const inRatio = inW / inH;
  let w = inW, h = inH;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return { y0: Math.floor((inH - h) / 2), x0: Math.floor((inW - w) / 2), h, w };
}

/** Training parameters for `n` images, drawn in image order from `rng`. */
export function sampleAugmentParams(
  rng: UniformSource,
  n: number,
  inH: number,
  inW: number,
  options: AugmentOptions = {},
): ImageParams[] {
  const o = options;
  const factor = (s = 0) =>
    s > 0 ? Math.max(0, 1 - s) + (1 + s - Math.max(0, 1 - s)) * rng.float() : 1;
  const out: ImageParams[] = [];
  for (let i = 0; i < n; i++) {
    const box = randomResizedCropBox(rng, inH, inW, o.scale, o.ratio);
    const hflip = rng.float() < (o.hflip ?? 0.5);
    const vflip = rng.float() < (o.vflip ?? 0);
    const deg = o.degrees ?? 0;
    const angle = deg > 0 ? -deg + 2 * deg * rng.float() : 0;
    const brightness = factor(o.brightness);
    const contrast = factor(o.contrast);
    const saturation = factor(o.saturation);
    const hue = (o.hue ?? 0) > 0 ? -o.hue! + 2 * o.hue! * rng.float() : 0;
    out.push({ ...box, hflip, vflip, angle, brightness, contrast, saturation, hue });
  }
  return out;
}

/**
 * Eval transform for `n` images: resize the shorter side to `resize` (the longer side to
 * trunc(resize * long / short), as torchvision's Resize(int)), then centre crop outH x outW
 * (top = round((H' - outH) / 2)). Default `resize` = floor(min(outH, outW) * 256 / 224), the
 * ImageNet preset's ratio (256 for 224). A crop larger than the resized image is not padded as
 * torchvision would: its border pixels repeat (sampling clamps at the image edge).
 */
export function evalParams(
  n: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  resize = Math.floor(Math.min(outH, outW) * 256 / 224),
): ImageParams[] {
  const short = Math.min(inH, inW), long = Math.max(inH, inW);
  const longR = Math.floor(resize * long / short);
  const rH = inH <= inW ? resize : longR;
  const rW = inH <= inW ? longR : resize;
  const top = roundHalfEven((rH - outH) / 2), left = roundHalfEven((rW - outW) / 2);
  const sy = inH / rH, sx = inW / rW;
  const p: ImageParams = {
    y0: top * sy,
    x0: left * sx,
    h: outH * sy,
    w: outW * sx,
    hflip: false,
    vflip: false,
    angle: 0,
    brightness: 1,
    contrast: 1,
    saturation: 1,
    hue: 0,
  };
  return Array.from({ length: n }, () => ({ ...p }));
}

/**
 * The parameter buffer: PARAM_STRIDE f32 per image,
 * [y0, x0, h, w, hflip, vflip, cos, sin, brightness, contrast, saturation, hue].
 */
export function packParams(params: readonly ImageParams[]): Float32Array {
  const out = new Float32Array(params.length * PARAM_STRIDE);
  params.forEach((p, i) => {
    const a = p.angle * Math.PI / 180;
    out.set([
      p.y0,
      p.x0,
      p.h,
      p.w,
      p.hflip ? 1 : 0,
      p.vflip ? 1 : 0,
      Math.cos(a),
      Math.sin(a),
      p.brightness,
      p.contrast,
      p.saturation,
      p.hue,
    ], i * PARAM_STRIDE);
  });
  return out;
}

/** True when some image needs the second pass (contrast, saturation or hue jitter). */
export function needsColorPass(params: readonly ImageParams[]): boolean {
  return params.some((p) => p.contrast !== 1 || p.saturation !== 1 || p.hue !== 0);
}

function tiles(s: AugmentShape): number {
  return Math.ceil((s.outH * s.outW) / (WG * PER_THREAD));
}

const COMMON = (s: AugmentShape) => `
const IN_H: u32 = ${s.inH}u;
const IN_W: u32 = ${s.inW}u;
const OUT_H: u32 = ${s.outH}u;
const OUT_W: u32 = ${s.outW}u;
const OUT_PIX: u32 = ${s.outH * s.outW}u;
const STRIDE: u32 = ${PARAM_STRIDE}u;

fn srcByte(i: u32) -> f32 {
  return f32((src[i >> 2u] >> ((i & 3u) * 8u)) & 255u);
}

fn srcPixel(n: u32, y: u32, x: u32) -> vec3<f32> {
  let b = ((n * IN_H + y) * IN_W + x) * 3u;
  return vec3<f32>(srcByte(b), srcByte(b + 1u), srcByte(b + 2u));
}

// Geometry + bilinear sample + brightness for output pixel p of image n, in [0, 1].
fn sampleOut(n: u32, p: u32) -> vec3<f32> {
  let o = n * STRIDE;
  let oy = p / OUT_W;
  let ox = p - oy * OUT_W;
  let cx = f32(OUT_W) * 0.5;
  let cy = f32(OUT_H) * 0.5;
  let dx = f32(ox) + 0.5 - cx;
  let dy = f32(oy) + 0.5 - cy;
  let c = prm[o + 6u];
  let s = prm[o + 7u];
  var px = cx + dx * c - dy * s;
  var py = cy + dx * s + dy * c;
  if (px < 0.0 || px >= f32(OUT_W) || py < 0.0 || py >= f32(OUT_H)) {
    return vec3<f32>(0.0);
  }
  if (prm[o + 4u] > 0.5) { px = f32(OUT_W) - px; }
  if (prm[o + 5u] > 0.5) { py = f32(OUT_H) - py; }
  let sy = clamp(prm[o] + py * (prm[o + 2u] / f32(OUT_H)) - 0.5, 0.0, f32(IN_H - 1u));
  let sx = clamp(prm[o + 1u] + px * (prm[o + 3u] / f32(OUT_W)) - 0.5, 0.0, f32(IN_W - 1u));
  let y0 = u32(floor(sy));
  let x0 = u32(floor(sx));
  let y1 = min(y0 + 1u, IN_H - 1u);
  let x1 = min(x0 + 1u, IN_W - 1u);
  let fy = sy - f32(y0);
  let fx = sx - f32(x0);
  let top = mix(srcPixel(n, y0, x0), srcPixel(n, y0, x1), fx);
  let bot = mix(srcPixel(n, y1, x0), srcPixel(n, y1, x1), fx);
  let v = mix(top, bot, fy) / 255.0;
  return clamp(v * prm[o + 8u], vec3<f32>(0.0), vec3<f32>(1.0));
}
`;

const NORM = (ms: ReturnType<typeof meanStd>) => `
const MEAN = vec3<f32>(${ms.mean.map(f32lit).join(", ")});
const INV_STD = vec3<f32>(${ms.std.map((v) => f32lit(1 / v)).join(", ")});
`;

/** Single-pass kernel: geometry, brightness, normalise. */
export function augmentSimpleWgsl(s: AugmentShape, normalize: Normalize): string {
  const grid = gridFor(s.n * s.outH * s.outW, WG);
  return `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> prm: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${COMMON(s)}
${NORM(meanStd(normalize))}
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${s.n * s.outH * s.outW}u) { return; }
  let n = i / OUT_PIX;
  let v = (sampleOut(n, i - n * OUT_PIX) - MEAN) * INV_STD;
  dst[i * 3u] = v.x;
  dst[i * 3u + 1u] = v.y;
  dst[i * 3u + 2u] = v.z;
}`;
}

/** Pass A of the colour path: geometry + brightness into dst, grey sums per tile. */
export function augmentSampleWgsl(s: AugmentShape): string {
  const t = tiles(s);
  const grid = grid1d(s.n * t, WG);
  return `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> prm: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
${COMMON(s)}
const TILES: u32 = ${t}u;
const GREY = vec3<f32>(${GREY.map(f32lit).join(", ")});
var<workgroup> red: array<f32, ${WG}>;
${entry1d(WG)} {
  let g = ${grid.group};
  let valid = g < ${s.n * t}u;
  let n = g / TILES;
  let tile = g - n * TILES;
  var sum = 0.0;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let p = tile * ${WG * PER_THREAD}u + k * ${WG}u + lid.x;
    if (valid && p < OUT_PIX) {
      let v = sampleOut(n, p);
      let i = (n * OUT_PIX + p) * 3u;
      dst[i] = v.x;
      dst[i + 1u] = v.y;
      dst[i + 2u] = v.z;
      sum += dot(v, GREY);
    }
  }
  red[lid.x] = sum;
  workgroupBarrier();
  for (var w = ${WG / 2}u; w > 0u; w = w >> 1u) {
    if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
    workgroupBarrier();
  }
  if (valid && lid.x == 0u) { partial[g] = red[0]; }
}`;
}

/** Pass B of the colour path: contrast, saturation, hue, normalise, in place. */
export function augmentColorWgsl(s: AugmentShape, normalize: Normalize): string {
  const grid = gridFor(s.n * s.outH * s.outW, WG);
  return `
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read> prm: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
const OUT_PIX: u32 = ${s.outH * s.outW}u;
const STRIDE: u32 = ${PARAM_STRIDE}u;
const TILES: u32 = ${tiles(s)}u;
const GREY = vec3<f32>(${GREY.map(f32lit).join(", ")});
${NORM(meanStd(normalize))}

fn hueShift(rgb: vec3<f32>, shift: f32) -> vec3<f32> {
  let r = rgb.x; let g = rgb.y; let b = rgb.z;
  let maxc = max(r, max(g, b));
  let minc = min(r, min(g, b));
  let eqc = maxc == minc;
  let cr = maxc - minc;
  let s = cr / select(maxc, 1.0, eqc);
  let crd = select(cr, 1.0, eqc);
  let rc = (maxc - r) / crd;
  let gc = (maxc - g) / crd;
  let bc = (maxc - b) / crd;
  var h: f32;
  if (maxc == r) { h = bc - gc; }
  else if (maxc == g) { h = 2.0 + rc - bc; }
  else { h = 4.0 + gc - rc; }
  h = fract(h / 6.0 + 1.0);
  h = fract(h + shift + 1.0);
  let v = maxc;
  let h6 = h * 6.0;
  let fi = floor(h6);
  let f = h6 - fi;
  let i = u32(fi) % 6u;
  let p = clamp(v * (1.0 - s), 0.0, 1.0);
  let q = clamp(v * (1.0 - s * f), 0.0, 1.0);
  let t = clamp(v * (1.0 - s * (1.0 - f)), 0.0, 1.0);
  switch i {
    case 0u: { return vec3<f32>(v, t, p); }
    case 1u: { return vec3<f32>(q, v, p); }
    case 2u: { return vec3<f32>(p, v, t); }
    case 3u: { return vec3<f32>(p, q, v); }
    case 4u: { return vec3<f32>(t, p, v); }
    default: { return vec3<f32>(v, p, q); }
  }
}

${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${s.n * s.outH * s.outW}u) { return; }
  let n = i / OUT_PIX;
  let o = n * STRIDE;
  var total = 0.0;
  for (var k = 0u; k < TILES; k++) { total += partial[n * TILES + k]; }
  let mean = total / f32(OUT_PIX);
  let zero = vec3<f32>(0.0);
  let one = vec3<f32>(1.0);
  var v = vec3<f32>(dst[i * 3u], dst[i * 3u + 1u], dst[i * 3u + 2u]);
  v = clamp(mean + prm[o + 9u] * (v - mean), zero, one);
  let grey = dot(v, GREY);
  v = clamp(grey + prm[o + 10u] * (v - grey), zero, one);
  if (prm[o + 11u] != 0.0) { v = hueShift(v, prm[o + 11u]); }
  v = (v - MEAN) * INV_STD;
  dst[i * 3u] = v.x;
  dst[i * 3u + 1u] = v.y;
  dst[i * 3u + 2u] = v.z;
}`;
}

/**
 * Augments a batch: `u8` holds n*inH*inW*3 bytes (NHWC RGB, e.g. `g.upload(batch.images)`).
 * Returns a new pooled buffer of n*outH*outW*3 f32 (NHWC, normalised). One dispatch, or two
 * when some image has contrast/saturation/hue jitter.
 */
export function augmentBatch(g: Gpu, u8: GPUBuffer, o: AugmentBatchOptions): GPUBuffer {
  if (o.params.length !== o.n) throw new RangeError(`${o.params.length} params for ${o.n} images`);
  const prm = g.upload(packParams(o.params));
  const dst = g.pool.acquire(o.n * o.outH * o.outW * 3 * 4);
  const pixels = o.n * o.outH * o.outW;
  if (!needsColorPass(o.params)) {
    g.run(augmentSimpleWgsl(o, o.normalize), [u8, prm, dst], gridFor(pixels, WG).workgroups);
  } else {
    const t = tiles(o);
    const partial = g.pool.acquire(o.n * t * 4);
    g.run(augmentSampleWgsl(o), [u8, prm, dst, partial], grid1d(o.n * t, WG).workgroups);
    g.run(augmentColorWgsl(o, o.normalize), [partial, prm, dst], gridFor(pixels, WG).workgroups);
    g.pool.release(partial);
  }
  g.pool.release(prm);
  return dst;
}

/** f64 CPU reference of `augmentBatch` on bytes `u8`; returns n*outH*outW*3 values. */
export function augmentBatchCpu(u8: Uint8Array, o: AugmentBatchOptions): Float64Array {
  const { n, inH, inW, outH, outW } = o;
  const ms = meanStd(o.normalize);
  const out = new Float64Array(n * outH * outW * 3);
  const px = outH * outW;
  for (let img = 0; img < n; img++) {
    const p = o.params[img];
    const a = p.angle * Math.PI / 180;
    const cos = Math.cos(a), sin = Math.sin(a);
    const rgb = new Float64Array(px * 3);
    let greySum = 0;
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        const v = [0, 0, 0];
        const dx = ox + 0.5 - outW / 2, dy = oy + 0.5 - outH / 2;
        let qx = outW / 2 + dx * cos - dy * sin;
        let qy = outH / 2 + dx * sin + dy * cos;
        if (qx >= 0 && qx < outW && qy >= 0 && qy < outH) {
          if (p.hflip) qx = outW - qx;
          if (p.vflip) qy = outH - qy;
          const sy = Math.min(Math.max(p.y0 + qy * (p.h / outH) - 0.5, 0), inH - 1);
          const sx = Math.min(Math.max(p.x0 + qx * (p.w / outW) - 0.5, 0), inW - 1);
          const y0 = Math.floor(sy), x0 = Math.floor(sx);
          const y1 = Math.min(y0 + 1, inH - 1), x1 = Math.min(x0 + 1, inW - 1);
          const fy = sy - y0, fx = sx - x0;
          const at = (y: number, x: number, c: number) => u8[((img * inH + y) * inW + x) * 3 + c];
          for (let c = 0; c < 3; c++) {
            const top = at(y0, x0, c) * (1 - fx) + at(y0, x1, c) * fx;
            const bot = at(y1, x0, c) * (1 - fx) + at(y1, x1, c) * fx;
            v[c] = clamp01((top * (1 - fy) + bot * fy) / 255 * p.brightness);
          }
        }
        rgb.set(v, (oy * outW + ox) * 3);
        greySum += grey(v);
      }
    }
    const mean = greySum / px;
    for (let i = 0; i < px; i++) {
      let v = [rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]];
      v = v.map((x) => clamp01(mean + p.contrast * (x - mean)));
      const gr = grey(v);
      v = v.map((x) => clamp01(gr + p.saturation * (x - gr)));
      if (p.hue !== 0) v = hueShiftCpu(v, p.hue);
      for (let c = 0; c < 3; c++) {
        out[((img * px) + i) * 3 + c] = (v[c] - ms.mean[c]) / ms.std[c];
      }
    }
  }
  return out;
}

function clamp01(x: number): number {
  return Math.min(Math.max(x, 0), 1);
}

function grey(v: readonly number[]): number {
  return GREY[0] * v[0] + GREY[1] * v[1] + GREY[2] * v[2];
}

/** torchvision's adjust_hue on one pixel in [0, 1]: RGB -> HSV, h += shift (mod 1), -> RGB. */
export function hueShiftCpu(rgb: readonly number[], shift: number): number[] {
  const [r, g, b] = rgb;
  const maxc = Math.max(r, g, b), minc = Math.min(r, g, b);
  const eqc = maxc === minc;
  const cr = maxc - minc;
  const s = cr / (eqc ? 1 : maxc);
  const crd = eqc ? 1 : cr;
  const rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
  let h = maxc === r ? bc - gc : maxc === g ? 2 + rc - bc : 4 + gc - rc;
  h = mod1(h / 6 + 1);
  h = mod1(h + shift);
  const v = maxc;
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = clamp01(v * (1 - s)), q = clamp01(v * (1 - s * f)), t = clamp01(v * (1 - s * (1 - f)));
  switch (i % 6) {
    case 0:
      return [v, t, p];
    case 1:
      return [q, v, p];
    case 2:
      return [p, v, t];
    case 3:
      return [p, q, v];
    case 4:
      return [t, p, v];
    default:
      return [v, p, q];
  }
}

function mod1(x: number): number {
  return x - Math.floor(x);
}
