/**
 * `predict --weights FILE [--model M] (--image file.jpg | --input x.npy) [--logits out.npy]
 * [--top K] [--image-size S] [--preprocess imagenet|tf]`: classify images, or a preprocessed
 * NCHW float32 batch from NumPy or PyTorch. The weights are a torchvision-format .pth, a
 * safetensors file or one of our checkpoints (which name their model and classes, and record
 * their input normalisation and padding: `--preprocess` defaults to the checkpoint's, `tf` for
 * a TF-slim run, and the model is rebuilt with its padding); the head size comes from the
 * weights.
 */
import { parseArgs } from "node:util";
import sharp from "sharp";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { augmentBatch, evalParams } from "../../kernels/ops/augment.ts";
import { UserError } from "../../core/errors.ts";
import { detectWeightsFormat, parseWeights } from "../../core/io/load.ts";
import { readSafetensors } from "../../core/io/safetensors.ts";
import { readNpy, writeNpy } from "../../core/io/npy.ts";
import { normalizeKeys, type StateDict, toStateTensor } from "../../core/io/state_dict.ts";
import { fromBuffer, type Tensor, tensor } from "../../core/tensor.ts";
import { noGrad } from "../../core/autograd.ts";
import { tidy } from "../../core/scope.ts";
import { fromNchw } from "../../core/ops/structure.ts";
import { softmax } from "../../core/metrics/softmax.ts";
import { CLASS_NAMES, CLASSES } from "../../core/data/classes.ts";
import { isModelName, MODEL_NAMES, type ModelName, MODELS } from "../../models/registry.ts";
import { loadStateDict } from "../../models/load_weights.ts";
import {
  asCheckpoint,
  checkpointInput,
  IMAGENET_INPUT,
  type ModelInput,
} from "../train/checkpoint.ts";
import { buildModel } from "../train/models.ts";

const USAGE = "usage: predict --weights FILE [--model " + MODEL_NAMES.join("|") +
  "] (--image file.jpg [...] | --input x.npy) [--logits out.npy] [--top K] [--image-size S] " +
  "[--preprocess imagenet|tf (default: the checkpoint's, else imagenet)]";

interface Weights {
  stateDict: StateDict;
  model?: string;
  classNames?: string[];
  imageSize?: number;
  /** A checkpoint's input settings; imagenet without TF padding for other files. */
  input: ModelInput;
}

async function readWeights(path: string): Promise<Weights> {
  const bytes = await Deno.readFile(path).catch((e) => {
    throw new UserError(`${path}: ${(e as Error).message}; pass an existing file with --weights`);
  });
  if (detectWeightsFormat(bytes) !== "safetensors") {
    return { stateDict: parseWeights(bytes, path), input: IMAGENET_INPUT };
  }
  // safetensors: maybe one of our checkpoints, which records its model, classes and input.
  const { tensors, metadata } = readSafetensors(bytes, path);
  const sd: StateDict = new Map([...tensors].map(([k, t]) => [k, toStateTensor(t)]));
  const ckpt = asCheckpoint(sd, metadata, path);
  if (!ckpt) return { stateDict: normalizeKeys(sd), input: IMAGENET_INPUT };
  const { model, classNames, imageSize } = ckpt.meta;
  return {
    stateDict: ckpt.weights,
    model,
    classNames,
    imageSize,
    input: checkpointInput(ckpt.meta, path),
  };
}

/** Decodes an image and applies the eval transform on the GPU: NHWC [1, S, S, 3]. */
async function loadImage(
  path: string,
  size: number,
  preprocess: "imagenet" | "tf",
): Promise<Tensor> {
  let decoded: { data: Uint8Array; info: { width: number; height: number } };
  try {
    decoded = await sharp(path).removeAlpha().toColourspace("srgb").raw().toBuffer({
      resolveWithObject: true,
    });
  } catch (e) {
    throw new UserError(`${path}: cannot decode the image (${(e as Error).message})`);
  }
  const { width, height } = decoded.info;
  const g = await initGpu();
  const padded = new Uint8Array(Math.ceil(decoded.data.length / 4) * 4);
  padded.set(decoded.data);
  const u8 = g.upload(padded);
  const out = augmentBatch(g, u8, {
    n: 1,
    inH: height,
    inW: width,
    outH: size,
    outW: size,
    params: evalParams(1, height, width, size, size),
    normalize: preprocess === "tf" ? "minus1to1" : "imagenet",
  });
  g.pool.release(u8);
  return fromBuffer(out, [1, size, size, 3]);
}

async function loadInput(path: string): Promise<Tensor> {
  const raw = readNpy(
    await Deno.readFile(path).catch((e) => {
      throw new UserError(`${path}: ${(e as Error).message}`);
    }),
    path,
  );
  if (raw.shape.length !== 4 || raw.shape[1] !== 3 || !(raw.data instanceof Float32Array)) {
    throw new UserError(
      `${path}: expected a float32 NCHW batch [N, 3, H, W], got ${raw.dtype} [${raw.shape}]`,
    );
  }
  const nchw = tensor(raw.data, raw.shape);
  const nhwc = fromNchw(nchw);
  nchw.dispose();
  return nhwc;
}

function labelsFor(numClasses: number, names?: string[]): string[] {
  if (names?.length === numClasses) return names;
  if (numClasses === CLASSES.length) return CLASSES.map((c, i) => `${c} (${CLASS_NAMES[i]})`);
  return Array.from({ length: numClasses }, (_, i) => `class ${i}`);
}

export async function run(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        weights: { type: "string" },
        model: { type: "string" },
        image: { type: "string", multiple: true },
        input: { type: "string" },
        logits: { type: "string" },
        top: { type: "string", default: "3" },
        "image-size": { type: "string" },
        preprocess: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UserError(`${(e as Error).message}\n${USAGE}`);
  }
  const v = parsed.values;
  if (v.help) return console.log(USAGE);
  if (!v.weights) throw new UserError(`--weights FILE is required\n${USAGE}`);
  const images = [...(v.image ?? []), ...parsed.positionals];
  if (!images.length === !v.input) {
    throw new UserError(`give either --image file.jpg or --input x.npy\n${USAGE}`);
  }
  if (v.preprocess !== undefined && v.preprocess !== "imagenet" && v.preprocess !== "tf") {
    throw new UserError(`--preprocess ${v.preprocess}: expected imagenet or tf`);
  }
  const top = Number(v.top);
  if (!Number.isInteger(top) || top < 1) throw new UserError(`--top ${v.top}: expected K >= 1`);

  await initGpu();
  const weights = await readWeights(v.weights);
  const name = v.model ?? weights.model;
  if (!name || !isModelName(name)) {
    throw new UserError(
      `${
        name ? `unknown model '${name}'` : `${v.weights} does not name its model`
      }: pass --model ` +
        MODEL_NAMES.join("|"),
    );
  }
  const spec = MODELS[name as ModelName];
  const head = weights.stateDict.get(`${spec.headPrefix}weight`);
  if (!head) {
    throw new UserError(`${v.weights}: no '${spec.headPrefix}weight': are these ${name} weights?`);
  }
  const numClasses = head.shape[0];
  const model = buildModel(name, numClasses, 0, { tfPadding: weights.input.tfPadding });
  loadStateDict(model, weights.stateDict, { strict: true, file: v.weights });
  model.eval();
  const size = Number(v["image-size"] ?? weights.imageSize ?? 224);
  const preprocess =
    (v.preprocess ?? (weights.input.normalize === "minus1to1" ? "tf" : "imagenet")) as
      | "imagenet"
      | "tf";

  const inputs = v.input ? [{ label: v.input, x: await loadInput(v.input) }] : await Promise.all(
    images.map(async (p) => ({
      label: p,
      x: await loadImage(p, size, preprocess),
    })),
  );
  const names = labelsFor(numClasses, weights.classNames);
  const all: Float32Array[] = [];
  for (const { label, x } of inputs) {
    const logits = noGrad(() => tidy(() => model.forward(x)));
    const data = (await logits.read()) as Float32Array;
    logits.dispose();
    x.dispose();
    all.push(data);
    const n = data.length / numClasses;
    const probs = softmax(data, numClasses);
    for (let i = 0; i < n; i++) {
      const row = Array.from(probs.subarray(i * numClasses, (i + 1) * numClasses));
      const order = row.map((p, c) => [p, c] as const).sort((a, b) => b[0] - a[0]).slice(0, top);
      const tag = n > 1 ? `${label}[${i}]` : label;
      console.log(
        `${tag}: ${order.map(([p, c]) => `${names[c]} ${(100 * p).toFixed(1)}%`).join(", ")}`,
      );
    }
  }
  if (v.logits) {
    const flat = new Float32Array(all.reduce((s, a) => s + a.length, 0));
    let o = 0;
    for (const a of all) {
      flat.set(a, o);
      o += a.length;
    }
    await Deno.writeFile(
      v.logits,
      writeNpy({ dtype: "float32", shape: [flat.length / numClasses, numClasses], data: flat }),
    );
    console.log(`logits [${flat.length / numClasses}, ${numClasses}] -> ${v.logits}`);
  }
  model.dispose();
}
