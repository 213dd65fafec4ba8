/**
 * A safe, data-only interpreter for Python pickles (protocols 0-5 binary opcodes that torch.save
 * and ordinary dict/list/tuple data use). It never runs code: GLOBAL / STACK_GLOBAL resolve names
 * only through a caller-supplied allow-list, and an unknown global is refused with a `UserError`
 * naming it. Every read is bounds-checked and every loop is bounded by the input length.
 *
 * Value mapping: None -> null, bool -> boolean, int -> number (bigint when beyond 2^53),
 * float -> number, str -> string, bytes -> Uint8Array, list and tuple -> Array,
 * dict and OrderedDict -> Map, allow-listed globals -> whatever the table holds.
 */
import { ByteReader } from "./byte_reader.ts";

/** An allow-listed callable global. `fail` throws a `UserError` naming the file. */
export class PickleCallable {
  constructor(
    readonly qualname: string,
    readonly fn: (args: unknown[], fail: (message: string) => never) => unknown,
  ) {}
}

/** Objects that accept pickle BUILD state implement this; BUILD on anything else is ignored. */
export interface Buildable {
  setPickleState(state: unknown, fail: (message: string) => never): void;
}

/** Allow-list: "module.qualname" -> the value GLOBAL pushes (a `PickleCallable` if callable). */
export type GlobalTable = ReadonlyMap<string, unknown>;

/** Only `collections.OrderedDict`. */
export const BASE_GLOBALS: GlobalTable = new Map<string, unknown>([
  [
    "collections.OrderedDict",
    new PickleCallable("collections.OrderedDict", (args, fail) => {
      const m = new Map<unknown, unknown>();
      if (args.length === 0) return m;
      if (args.length === 1 && Array.isArray(args[0])) {
        for (const pair of args[0]) {
          if (!Array.isArray(pair) || pair.length !== 2) fail("OrderedDict() item is not a pair");
          m.set(pair[0], pair[1]);
        }
        return m;
      }
      return fail("unsupported OrderedDict() arguments");
    }),
  ],
]);

export interface UnpickleOptions {
  /** File name for error messages. */
  name?: string;
  /** Byte offset where the pickle starts (several pickles may follow each other). */
  offset?: number;
  /** The allow-listed globals (default `BASE_GLOBALS`). */
  globals?: GlobalTable;
  /** Handler for BINPERSID / PERSID; without one, persistent ids are refused. */
  persistentLoad?: (pid: unknown, fail: (message: string) => never) => unknown;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just after the STOP opcode. */
  end: number;
}

const MAX_LONG_BYTES = 4096;

function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}

function isBuildable(x: unknown): x is Buildable {
  return typeof x === "object" && x !== null &&
    typeof (x as Partial<Buildable>).setPickleState === "function";
}

/** Runs one pickle. Throws a `UserError` (naming the file) on any malformed or unsafe input. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): UnpickleResult {
  const name = options.name ?? "pickle";
  const globals = options.globals ?? BASE_GLOBALS;
  const r = new ByteReader(bytes, name, "pickle", options.offset ?? 0);
  const fail = (m: string): never => r.fail(m);
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const pop = (): unknown => {
    if (stack.length === 0) fail(`corrupt pickle: stack underflow at offset ${r.pos - 1}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail(`corrupt pickle: empty stack at offset ${r.pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) return fail(`corrupt pickle: MARK missing at offset ${r.pos - 1}`);
    stack = prev;
    return items;
  };
  const resolve = (module: string, qualname: string): unknown => {
    const key = `${module}.${qualname}`;
    if (!globals.has(key)) {
      fail(
        `refusing to load: the pickle references the global "${key}", which is not on the ` +
          `allow-list of safe globals (it was not executed). Only plain tensor state_dicts can be ` +
          `loaded; in PyTorch save model.state_dict() instead of the model or other objects`,
      );
    }
    return globals.get(key);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PickleCallable)) {
      return fail(`corrupt pickle: REDUCE on a non-callable object at offset ${r.pos - 1}`);
    }
    if (!Array.isArray(args)) return fail(`corrupt pickle: ${fn.qualname} called without a tuple`);
    return fn.fn(args, fail);
  };
  const asMap = (x: unknown): Map<unknown, unknown> => {
    if (!(x instanceof Map)) {
      fail(`corrupt pickle: SETITEM(S) on a non-dict at offset ${r.pos - 1}`);
    }
    return x as Map<unknown, unknown>;
  };
  const asList = (x: unknown): unknown[] => {
    if (!Array.isArray(x)) fail(`corrupt pickle: APPEND(S) on a non-list at offset ${r.pos - 1}`);
    return x as unknown[];
  };
  const getMemo = (i: number): unknown => {
    if (!memo.has(i)) fail(`corrupt pickle: memo entry ${i} is not defined`);
    return memo.get(i);
  };
  const decimalLine = (): number => {
    const s = r.line(20);
    if (!/^\d+$/.test(s)) fail(`corrupt pickle: bad memo index ${JSON.stringify(s)}`);
    return Number(s);
  };

  // Each iteration consumes at least one byte, so the loop ends within bytes.length steps.
  for (;;) {
    const at = r.pos;
    const op = r.u8();
    switch (op) {
      case 0x80: { // PROTO
        const proto = r.u8();
        if (proto > 5) fail(`unsupported pickle protocol ${proto}`);
        break;
      }
      case 0x95: // FRAME
        r.u64();
        break;
      case 0x2e: // STOP '.'
        return { value: pop(), end: r.pos };
      case 0x28: // MARK '('
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP '0'
        pop();
        break;
      case 0x31: // POP_MARK '1'
        popMark();
        break;
      case 0x32: // DUP '2'
        stack.push(top());
        break;
      case 0x7d: // EMPTY_DICT '}'
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST ']'
      case 0x29: // EMPTY_TUPLE ')'
        stack.push([]);
        break;
      case 0x74: // TUPLE 't'
      case 0x6c: { // LIST 'l'
        const items = popMark(); // (popMark replaces `stack`: call it before stack.push)
        stack.push(items);
        break;
      }
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x64: { // DICT 'd'
        const items = popMark();
        if (items.length % 2) fail("corrupt pickle: DICT with an odd number of items");
        const m = new Map();
        for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
        stack.push(m);
        break;
      }
      case 0x61: { // APPEND 'a'
        const v = pop();
        asList(top()).push(v);
        break;
      }
      case 0x65: { // APPENDS 'e'
        const items = popMark();
        const list = asList(top());
        for (const v of items) list.push(v);
        break;
      }
      case 0x73: { // SETITEM 's'
        const v = pop();
        const k = pop();
        asMap(top()).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS 'u'
        const items = popMark();
        if (items.length % 2) fail("corrupt pickle: SETITEMS with an odd number of items");
        const m = asMap(top());
        for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
        break;
      }
      case 0x4a: // BININT 'J'
        stack.push(r.i32());
        break;
      case 0x4b: // BININT1 'K'
        stack.push(r.u8());
        break;
      case 0x4d: // BININT2 'M'
        stack.push(r.u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(r.take(r.u8())));
        break;
      case 0x8b: { // LONG4
        const n = r.i32();
        if (n < 0 || n > MAX_LONG_BYTES) fail(`corrupt pickle: LONG4 of ${n} bytes`);
        stack.push(decodeLong(r.take(n)));
        break;
      }
      case 0x47: // BINFLOAT 'G'
        stack.push(r.f64be());
        break;
      case 0x58: // BINUNICODE 'X'
        stack.push(r.utf8(r.u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(r.utf8(r.u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(r.utf8(r.u64()));
        break;
      case 0x54: { // BINSTRING 'T'
        const n = r.i32();
        if (n < 0) fail(`corrupt pickle: negative string length ${n}`);
        stack.push(r.latin1(n));
        break;
      }
      case 0x55: // SHORT_BINSTRING 'U'
        stack.push(r.latin1(r.u8()));
        break;
      case 0x42: // BINBYTES 'B'
        stack.push(r.take(r.u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES 'C'
        stack.push(r.take(r.u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(r.take(r.u64()).slice());
        break;
      case 0x4e: // NONE 'N'
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x63: { // GLOBAL 'c'
        const module = r.line(256);
        stack.push(resolve(module, r.line(256)));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const qualname = pop();
        const module = pop();
        if (typeof module !== "string" || typeof qualname !== "string") {
          fail("corrupt pickle: STACK_GLOBAL needs two strings");
        }
        stack.push(resolve(module as string, qualname as string));
        break;
      }
      case 0x52: { // REDUCE 'R'
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args), only for allow-listed callables
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: { // BUILD 'b'
        const state = pop();
        const obj = top();
        if (isBuildable(obj)) obj.setPickleState(state, fail);
        // BUILD on dicts/lists (e.g. a state_dict's `_metadata`) is ignored: no code runs.
        break;
      }
      case 0x51: { // BINPERSID 'Q'
        const pid = pop();
        if (!options.persistentLoad) fail("pickle uses persistent ids but none are expected here");
        stack.push(options.persistentLoad!(pid, fail));
        break;
      }
      case 0x71: // BINPUT 'q'
        memo.set(r.u8(), top());
        break;
      case 0x72: // LONG_BINPUT 'r'
        memo.set(r.u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: // PUT 'p'
        memo.set(decimalLine(), top());
        break;
      case 0x68: // BINGET 'h'
        stack.push(getMemo(r.u8()));
        break;
      case 0x6a: // LONG_BINGET 'j'
        stack.push(getMemo(r.u32()));
        break;
      case 0x67: // GET 'g'
        stack.push(getMemo(decimalLine()));
        break;
      default: {
        const ch = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : "";
        fail(
          `unsupported or corrupt pickle opcode 0x${
            op.toString(16).padStart(2, "0")
          }${ch} at offset ${at}`,
        );
      }
    }
  }
}
