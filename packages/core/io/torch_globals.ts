/**
 * The allow-list of Python globals a torch state_dict pickle may reference, and the placeholder
 * objects they build (storages and tensors are resolved later by the torch reader). Mirrors the
 * spirit of `torch.load(weights_only=True)`: tensors, storages, OrderedDict, torch.Size.
 */
import type { DType } from "./dtypes.ts";
import { BASE_GLOBALS, type Buildable, type GlobalTable, PickleCallable } from "./pickle.ts";

/** The value of a `torch.XStorage` global: which element type a storage holds. */
export class StorageType {
  constructor(readonly qualname: string, readonly dtype: DType) {}
}

/** A storage referenced by a persistent id: `numel` elements from `offset` of storage `key`. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    readonly location: string,
    /** Element offset into the root storage (non-zero only for legacy storage views). */
    readonly offset = 0,
  ) {}
}

/** A tensor view of a storage, from `torch._utils._rebuild_tensor_v2`. */
export class TensorRef implements Buildable {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
  /** Tensor attributes set by BUILD (e.g. on Parameters) are ignored. */
  setPickleState(): void {}
}

/** A class marker such as `torch.nn.parameter.Parameter` (used by `_rebuild_from_type_v2`). */
export class TypeMarker {
  constructor(readonly qualname: string) {}
}

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  DoubleStorage: "float64",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
};

const isIntArray = (x: unknown): x is number[] =>
  Array.isArray(x) && x.every((d) => Number.isSafeInteger(d) && d >= 0);

function rebuildTensor(args: unknown[], fail: (m: string) => never): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) {
    return fail("_rebuild_tensor_v2: first argument is not a storage");
  }
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) {
    return fail(`_rebuild_tensor_v2: bad storage offset ${String(offset)}`);
  }
  if (!isIntArray(size) || !isIntArray(stride) || size.length !== stride.length) {
    return fail("_rebuild_tensor_v2: size and stride must be tuples of the same length");
  }
  return new TensorRef(storage, offset as number, size.slice(), stride.slice());
}

function passTensor(qualname: string) {
  return new PickleCallable(qualname, (args, fail) => {
    if (!(args[0] instanceof TensorRef)) return fail(`${qualname}: first argument is not a tensor`);
    return args[0];
  });
}

const entries: [string, unknown][] = [
  ...BASE_GLOBALS,
  [
    "torch._utils._rebuild_tensor_v2",
    new PickleCallable("torch._utils._rebuild_tensor_v2", rebuildTensor),
  ],
  ["torch._utils._rebuild_parameter", passTensor("torch._utils._rebuild_parameter")],
  [
    "torch._utils._rebuild_parameter_with_state",
    passTensor("torch._utils._rebuild_parameter_with_state"),
  ],
  [
    "torch._tensor._rebuild_from_type_v2",
    new PickleCallable("torch._tensor._rebuild_from_type_v2", (args, fail) => {
      const [func, type, inner] = args;
      if (
        !(func instanceof PickleCallable) || !(type instanceof TypeMarker) || !Array.isArray(inner)
      ) {
        return fail("_rebuild_from_type_v2: unexpected arguments");
      }
      return func.fn(inner, fail);
    }),
  ],
  ["torch.Tensor", new TypeMarker("torch.Tensor")],
  ["torch.nn.parameter.Parameter", new TypeMarker("torch.nn.parameter.Parameter")],
  [
    "torch.Size",
    new PickleCallable("torch.Size", (args, fail) => {
      if (args.length === 0) return [];
      if (!isIntArray(args[0])) return fail("torch.Size: expected a tuple of ints");
      return args[0].slice();
    }),
  ],
  [
    "_codecs.encode",
    new PickleCallable("_codecs.encode", (args, fail) => {
      const [s, enc] = args;
      if (typeof s !== "string") return fail("_codecs.encode: expected a string");
      if (enc === "latin1" || enc === "latin-1") {
        return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
      }
      if (enc === "utf-8" || enc === "utf8") return new TextEncoder().encode(s);
      return fail(`_codecs.encode: unsupported encoding ${String(enc)}`);
    }),
  ],
  ...Object.entries(STORAGE_DTYPES).map(([n, d]): [string, unknown] => [
    `torch.${n}`,
    new StorageType(`torch.${n}`, d),
  ]),
];

/** The globals a torch state_dict pickle may use; everything else is refused. */
export const TORCH_GLOBALS: GlobalTable = new Map(entries);
