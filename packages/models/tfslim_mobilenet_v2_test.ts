/**
 * TF-slim MobileNetV2 weights (../shared/weights/mobilenet_v2/...) in our torchvision-structured
 * model: every features.* key filled with the right shape, identity BatchNorms carrying the folded
 * biases exactly, the first three feature blocks and the whole pooled feature extractor equal to
 * an f64 CPU computation straight from the .npy files (TF "SAME" padding, odd and even sizes),
 * finite features for a real HAM10000 image with the [-1, 1] preprocessing, and one-line
 * UserErrors for missing or mis-shaped files.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initGpu } from "../kernels/runtime/gpu.ts";
import { gpu } from "../kernels/runtime/gpu.ts";
import { augmentBatch, evalParams } from "../kernels/ops/augment.ts";
import { fromBuffer, type Tensor, tensor } from "../core/tensor.ts";
import { tidy } from "../core/scope.ts";
import { noGrad } from "../core/autograd.ts";
import { Rng } from "../core/data/rng.ts";
import { UserError } from "../core/errors.ts";
import { loadWeightsFile } from "../core/io/load.ts";
import type { StateDict } from "../core/io/state_dict.ts";
import { decodeResize } from "../core/data/image_cache.ts";
import { loadStateDict, torchEntries } from "./load_weights.ts";
import { mobilenetV2 } from "./mobilenet_v2.ts";
import {
  BN_EPS,
  bnPrefixFor,
  defaultTfSlimDir,
  loadTfSlimMobileNetV2,
  parseTfSlimMapping,
  pooledFeatures,
  readTfSlimMapping,
  TFSLIM_NORMALIZE,
  type TfSlimEntry,
  tfSlimStateDict,
} from "./tfslim_mobilenet_v2.ts";

const DIR = defaultTfSlimDir();
const IMAGE = new URL(
  "../../../shared/data/ham10000/images_200x150/ISIC_0024306.jpg",
  import.meta.url,
);

let raw: StateDict | null = null;
async function rawFiles(): Promise<StateDict> {
  raw ??= await loadWeightsFile(DIR, { rawKeys: true });
  return raw;
}

function f32(sd: StateDict, stem: string): { data: Float32Array; shape: number[] } {
  const t = sd.get(stem);
  assert.ok(t, `${stem} not in the folder`);
  return { data: t.data as Float32Array, shape: t.shape };
}

interface Img {
  data: Float64Array;
  h: number;
  w: number;
  c: number;
}

/** TF "SAME" padding before (top/left) for one dimension. */
function padBefore(size: number, k: number, s: number): number {
  const total = Math.max((Math.ceil(size / s) - 1) * s + k - size, 0);
  return Math.floor(total / 2);
}

/**
 * f64 CPU conv with TF "SAME" padding on an HWC image; weights as stored in the .npy files:
 * regular OHWI, depthwise (1, KH, KW, C). Adds the bias and applies ReLU6 if asked.
 */
function convCpu(
  x: Img,
  w: { data: Float32Array; shape: number[] },
  bias: Float32Array,
  stride: number,
  depthwise: boolean,
  relu6: boolean,
): Img {
  const [a, KH, KW, b] = w.shape;
  const O = depthwise ? b : a;
  const oh = Math.ceil(x.h / stride), ow = Math.ceil(x.w / stride);
  const pt = padBefore(x.h, KH, stride), pl = padBefore(x.w, KW, stride);
  const out = new Float64Array(oh * ow * O);
  for (let y = 0; y < oh; y++) {
    for (let z = 0; z < ow; z++) {
      for (let o = 0; o < O; o++) {
        let acc = bias[o];
        for (let kh = 0; kh < KH; kh++) {
          const iy = y * stride + kh - pt;
          if (iy < 0 || iy >= x.h) continue;
          for (let kw = 0; kw < KW; kw++) {
            const ix = z * stride + kw - pl;
            if (ix < 0 || ix >= x.w) continue;
            const px = (iy * x.w + ix) * x.c;
            if (depthwise) acc += x.data[px + o] * w.data[(kh * KW + kw) * O + o];
            else {
              const wb = ((o * KH + kh) * KW + kw) * b;
              for (let i = 0; i < b; i++) acc += x.data[px + i] * w.data[wb + i];
            }
          }
        }
        out[(y * ow + z) * O + o] = relu6 ? Math.min(Math.max(acc, 0), 6) : acc;
      }
    }
  }
  return { data: out, h: oh, w: ow, c: O };
}

function assertClose(got: Float32Array, want: Img, what: string) {
  assert.equal(got.length, want.data.length, what);
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want.data[i]) / (1e-4 + 1e-4 * Math.abs(want.data[i]));
    worst = Math.max(worst, err);
  }
  assert.ok(worst <= 1, `${what}: error ${worst} x tolerance`);
}

const run = (fn: () => Tensor) => noGrad(() => tidy(fn));

Deno.test("tfSlimStateDict fills every features.* key with torchvision's shapes; the model loads strictly", async () => {
  await initGpu();
  const mapping = await readTfSlimMapping(DIR);
  assert.equal(mapping.length, 52);
  assert.equal(mapping.filter((e) => e.depthwise).length, 17);
  const sd = tfSlimStateDict(await rawFiles(), mapping, { dir: DIR });
  const model = mobilenetV2({ numClasses: 7, tfPadding: true });
  try {
    const features = [...torchEntries(model)].filter(([k]) => k.startsWith("features."));
    assert.equal(features.length, 52 * 6);
    assert.deepEqual([...sd.keys()].sort(), features.map(([k]) => k).sort());
    for (const [k, e] of features) assert.deepEqual(sd.get(k)!.shape, e.shape, k);
    const report = loadStateDict(model, sd, { strict: true, skipHead: true, normalize: false });
    assert.equal(report.loaded.length, 52 * 6);
    assert.deepEqual(report.skipped, ["classifier.1.weight", "classifier.1.bias"]);
    assert.deepEqual([report.missing, report.unexpected, report.mismatched], [[], [], []]);
  } finally {
    model.dispose();
  }
});

Deno.test("loaded BatchNorms are (1, folded bias, 0, 1 - eps) exactly; conv weights transposed", async () => {
  await initGpu();
  const files = await rawFiles();
  const mapping = await readTfSlimMapping(DIR);
  const model = await loadTfSlimMobileNetV2(DIR, { numClasses: 7 });
  try {
    assert.equal(model.tfPadding, true);
    assert.equal(model.training, false);
    assert.equal(model.numClasses, 7);
    const state = model.stateTensors();
    const varWant = Math.fround(1 - BN_EPS);
    for (const e of mapping) {
      const p = bnPrefixFor(e.torchKey);
      const bias = f32(files, e.bias.replace(/\.npy$/, "")).data;
      const read = async (k: string) => {
        const t = state.get(p + k);
        assert.ok(t, p + k);
        return await t.read();
      };
      assert.ok((await read("weight")).every((v) => v === 1), `${p}weight`);
      assert.deepEqual([...await read("bias")], [...bias], `${p}bias`);
      assert.ok((await read("running_mean")).every((v) => v === 0), `${p}running_mean`);
      assert.ok((await read("running_var")).every((v) => v === varWant), `${p}running_var`);
    }
    // The model keeps HWIO [KH, KW, Cin/g, Cout]: stem OHWI [32,3,3,3] -> w[kh,kw,i,o] = f[o,kh,kw,i].
    const stem = f32(files, "Const_90").data;
    const w = await state.get("features.0.0.weight")!.read();
    assert.deepEqual(state.get("features.0.0.weight")!.shape, [3, 3, 3, 32]);
    for (const [o, kh, kw, i] of [[0, 0, 0, 0], [31, 2, 1, 2], [7, 1, 2, 1]]) {
      assert.equal(w[((kh * 3 + kw) * 3 + i) * 32 + o], stem[((o * 3 + kh) * 3 + kw) * 3 + i]);
    }
    // Depthwise (1,3,3,32) -> HWIO [3,3,1,32]: same element order.
    const dw = f32(files, "Const_238").data;
    assert.deepEqual([...await state.get("features.1.conv.0.0.weight")!.read()], [...dw]);
  } finally {
    model.dispose();
  }
});

Deno.test("features.0-2 equal an f64 CPU computation from the .npy files (TF SAME padding)", async () => {
  await initGpu();
  const files = await rawFiles();
  const model = await loadTfSlimMobileNetV2(DIR, { numClasses: 7 });
  const sym = mobilenetV2({ numClasses: 7 });
  // 9 x 8: the odd height pads 1/1, the even width 0/1 (stride 2); again at 5 x 4 in block 2.
  const H = 9, W = 8;
  const rng = new Rng(5);
  const xs = new Float32Array(H * W * 3).map(() => rng.uniform(-1, 1));
  const x = tensor(xs, [1, H, W, 3]);
  try {
    const b = (s: string) => f32(files, s).data;
    let ref: Img = { data: Float64Array.from(xs), h: H, w: W, c: 3 };
    // features.0: Conv (stride 2) + bias + ReLU6.
    ref = convCpu(ref, f32(files, "Const_90"), b("MobilenetV2_Conv_Conv2D_bias"), 2, false, true);
    const f = model.features;
    const y0 = run(() => f.at(0).forward(x));
    assert.deepEqual([...y0.shape], [1, 5, 4, 32]);
    assertClose(await y0.read() as Float32Array, ref, "features.0");
    // features.1: depthwise + ReLU6, project (linear).
    ref = convCpu(
      ref,
      f32(files, "Const_238"),
      b("MobilenetV2_expanded_conv_depthwise_depthwise_bias"),
      1,
      true,
      true,
    );
    ref = convCpu(
      ref,
      f32(files, "Const_167"),
      b("MobilenetV2_expanded_conv_project_Conv2D_bias"),
      1,
      false,
      false,
    );
    const y1 = run(() => f.at(1).forward(y0));
    assertClose(await y1.read() as Float32Array, ref, "features.1");
    // features.2: expand + ReLU6, depthwise stride 2 + ReLU6, project.
    const s = "MobilenetV2_expanded_conv_1_";
    ref = convCpu(ref, f32(files, "Const_165"), b(`${s}expand_Conv2D_bias`), 1, false, true);
    ref = convCpu(ref, f32(files, "Const_99"), b(`${s}depthwise_depthwise_bias`), 2, true, true);
    ref = convCpu(ref, f32(files, "Const_73"), b(`${s}project_Conv2D_bias`), 1, false, false);
    const y2 = run(() => f.at(2).forward(y1));
    assert.deepEqual([...y2.shape], [1, 3, 2, 24]);
    assertClose(await y2.read() as Float32Array, ref, "features.2");
    // torchvision's symmetric padding with the same weights gives other numbers: the option matters.
    const mapping = await readTfSlimMapping(DIR);
    loadStateDict(sym, tfSlimStateDict(files, mapping), { skipHead: true, normalize: false });
    sym.eval();
    const s0 = run(() => sym.features.at(0).forward(x));
    assert.deepEqual([...s0.shape], [1, 5, 4, 32]);
    const a = await s0.read() as Float32Array, t = await y0.read() as Float32Array;
    const diff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - t[i])), 0);
    assert.ok(diff > 0.01, `symmetric vs SAME padding differ by only ${diff}`);
    for (const y of [y0, y1, y2, s0]) y.dispose();
  } finally {
    x.dispose();
    model.dispose();
    sym.dispose();
  }
});

/** The whole feature extractor on the CPU (f64) from the .npy files: pooled [1280] per image. */
function cpuFeatures(files: StateDict, mapping: TfSlimEntry[], x: Img): Float64Array {
  const byBlock = new Map<number, TfSlimEntry[]>();
  for (const e of mapping) {
    const blk = Number(e.torchKey.split(".")[1]);
    byBlock.set(blk, [...byBlock.get(blk) ?? [], e]);
  }
  const conv = (y: Img, e: TfSlimEntry, stride: number, act: boolean) =>
    convCpu(
      y,
      f32(files, e.weight.replace(/\.npy$/, "")),
      f32(files, e.bias.replace(/\.npy$/, "")).data,
      stride,
      e.depthwise,
      act,
    );
  const STRIDE2 = new Set([0, 2, 4, 7, 14]);
  let y = x;
  for (let blk = 0; blk <= 18; blk++) {
    const es = byBlock.get(blk)!;
    const stride = STRIDE2.has(blk) ? 2 : 1;
    if (es.length === 1) {
      y = conv(y, es[0], stride, true);
      continue;
    }
    let z = y;
    for (const [i, e] of es.entries()) {
      const last = i === es.length - 1;
      z = conv(z, e, e.depthwise ? stride : 1, !last);
    }
    if (stride === 1 && z.c === y.c) z = { ...z, data: z.data.map((v, i) => v + y.data[i]) };
    y = z;
  }
  const out = new Float64Array(y.c);
  for (let i = 0; i < y.h * y.w; i++) for (let c = 0; c < y.c; c++) out[c] += y.data[i * y.c + c];
  return out.map((v) => v / (y.h * y.w));
}

Deno.test("the whole feature extractor equals an f64 CPU forward from the .npy files (2 images, 33x30)", async () => {
  await initGpu();
  const files = await rawFiles();
  const mapping = await readTfSlimMapping(DIR);
  const model = await loadTfSlimMobileNetV2(DIR, { numClasses: 7 });
  const H = 33, W = 30, rng = new Rng(9);
  const xs = new Float32Array(2 * H * W * 3).map(() => rng.uniform(-1, 1));
  const x = tensor(xs, [2, H, W, 3]);
  try {
    const f = run(() => pooledFeatures(model, x));
    const got = await f.read() as Float32Array;
    f.dispose();
    for (let n = 0; n < 2; n++) {
      const img = {
        data: Float64Array.from(xs.subarray(n * H * W * 3, (n + 1) * H * W * 3)),
        h: H,
        w: W,
        c: 3,
      };
      const want = cpuFeatures(files, mapping, img);
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(scale > 0.1, `features ${scale}`);
      let worst = 0;
      for (let c = 0; c < 1280; c++) worst = Math.max(worst, Math.abs(got[n * 1280 + c] - want[c]));
      assert.ok(worst <= 1e-3 * scale, `image ${n}: max error ${worst} vs scale ${scale}`);
    }
  } finally {
    x.dispose();
    model.dispose();
  }
});

Deno.test("a real HAM10000 image at 64 px: [-1, 1] preprocessing and finite pooled features", async () => {
  await initGpu();
  const model = await loadTfSlimMobileNetV2(DIR, { numClasses: 7 });
  const S = 64;
  const u8 = await decodeResize(IMAGE.pathname, S, S, "cover");
  const g = gpu();
  const buf = g.upload(u8);
  try {
    assert.equal(TFSLIM_NORMALIZE, "minus1to1");
    const x = fromBuffer(
      augmentBatch(g, buf, {
        n: 1,
        inH: S,
        inW: S,
        outH: S,
        outW: S,
        params: evalParams(1, S, S, S, S, S),
        normalize: TFSLIM_NORMALIZE,
      }),
      [1, S, S, 3],
    );
    const xv = await x.read();
    let worst = 0;
    for (let i = 0; i < xv.length; i++) {
      worst = Math.max(worst, Math.abs(xv[i] - (u8[i] / 127.5 - 1)));
    }
    assert.ok(worst < 1e-5, `preprocessing is off x/127.5-1 by ${worst}`);
    const feats = run(() => pooledFeatures(model, x));
    assert.deepEqual([...feats.shape], [1, 1280]);
    const v = await feats.read();
    assert.ok(v.every((a) => Number.isFinite(a) && a >= 0 && a <= 6), "ReLU6 features in [0, 6]");
    const active = v.filter((a) => a > 0).length;
    assert.ok(active > 100, `only ${active} of 1280 features active`);
    const logits = run(() => model.forward(x));
    assert.deepEqual([...logits.shape], [1, 7]);
    assert.ok((await logits.read()).every(Number.isFinite));
    for (const t of [x, feats, logits]) t.dispose();
  } finally {
    g.pool.release(buf);
    model.dispose();
  }
});

Deno.test("a missing or mis-shaped file gives one UserError naming it", async () => {
  await initGpu();
  const mapping = await readTfSlimMapping(DIR);
  const files = new Map(await rawFiles());
  files.delete("Const_90");
  const dw = files.get("Const_238")!;
  files.set("Const_238", { ...dw, shape: [1, 3, 3, 16], data: dw.data.slice(0, 144) });
  assert.throws(
    () => tfSlimStateDict(files, mapping, { dir: "W" }),
    (e: Error) =>
      e instanceof UserError && !e.message.includes("\n") &&
      /^W: 2 TF-slim weight file problem/.test(e.message) &&
      /Const_90\.npy missing \(features\.0\.0\.weight\)/.test(e.message) &&
      /Const_238\.npy is float32 \[1,3,3,16\], expected float32 \[1,3,3,32\]/.test(e.message),
  );
  // A folder copy without the stem conv's weight, then without mapping.json.
  const tmp = await Deno.makeTempDir({ prefix: "tfslim-test-" });
  try {
    for await (const e of Deno.readDir(DIR)) {
      if (e.name !== "Const_90.npy" && (e.name.endsWith(".npy") || e.name === "mapping.json")) {
        await Deno.copyFile(join(DIR, e.name), join(tmp, e.name));
      }
    }
    await assert.rejects(
      () => loadTfSlimMobileNetV2(tmp),
      (e: Error) =>
        e instanceof UserError && e.message.startsWith(tmp) &&
        /Const_90\.npy missing/.test(e.message),
    );
    await Deno.remove(join(tmp, "mapping.json"));
    await assert.rejects(
      () => loadTfSlimMobileNetV2(tmp),
      (e: Error) => e instanceof UserError && e.message.includes(join(tmp, "mapping.json")),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  assert.throws(
    () => parseTfSlimMapping({}, "m.json"),
    (e: Error) => e instanceof UserError && /^m\.json: no 'entries' array/.test(e.message),
  );
  assert.throws(
    () => parseTfSlimMapping({ entries: [{ torchvision_key: "features.0.0.weight" }] }, "m.json"),
    (e: Error) => e instanceof UserError && /entry 0 \(features\.0\.0\.weight\)/.test(e.message),
  );
  assert.equal(bnPrefixFor("features.1.conv.1.weight"), "features.1.conv.2.");
  assert.equal(bnPrefixFor("features.18.0.weight"), "features.18.1.");
});
