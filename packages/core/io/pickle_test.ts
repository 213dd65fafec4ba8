import assert from "node:assert/strict";
import fc from "fast-check";
import { UserError } from "../errors.ts";
import { BASE_GLOBALS, unpickle } from "./pickle.ts";
import { PickleWriter } from "./testing_builders.ts";
import { TORCH_GLOBALS } from "./torch_globals.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));

// Made with CPython 3: pickle.dumps(obj, protocol=2 / 4) where
// obj = {'a': [1, 2.5, None, True, False, 'é€', b'xy', (1,), (1,2), (1,2,3), 2**70, -5, 300,
//              70000, -(2**40), -1], 'nested': {'k': ()}, 7: 'int key'}
const PY_P2 =
  "80027d71002858010000006171015d7102284b014740040000000000004e88895805000000c3a9e282ac7103635f636f646563730a656e636f64650a710458020000007879710558060000006c6174696e3171068671075271084b018571094b014b0286710a4b014b024b0387710b8a090000000000000000404afbffffff4d2c014a701101008a060000000000ff4affffffff6558060000006e6573746564710c7d710d58010000006b710e29734b075807000000696e74206b6579710f752e";
const PY_P4 =
  "8004957c000000000000007d94288c0161945d94284b014740040000000000004e88898c05c3a9e282ac9443027879944b0185944b014b0286944b014b024b0387948a090000000000000000404afbffffff4d2c014a701101008a060000000000ff4affffffff658c066e6573746564947d948c016b9429734b078c07696e74206b657994752e";

function checkPyObject(value: unknown) {
  assert.ok(value instanceof Map);
  assert.deepEqual([...value.keys()], ["a", "nested", 7]);
  assert.deepEqual(value.get("a"), [
    1,
    2.5,
    null,
    true,
    false,
    "é€",
    Uint8Array.of(0x78, 0x79),
    [1],
    [1, 2],
    [1, 2, 3],
    2n ** 70n,
    -5,
    300,
    70000,
    -(2 ** 40),
    -1,
  ]);
  assert.deepEqual(value.get("nested"), new Map([["k", []]]));
  assert.equal(value.get(7), "int key");
}

Deno.test("unpickle: CPython protocol 2 data (with _codecs.encode for bytes)", () => {
  const bytes = hex(PY_P2);
  const { value, end } = unpickle(bytes, { globals: TORCH_GLOBALS });
  checkPyObject(value);
  assert.equal(end, bytes.length);
});

Deno.test("unpickle: CPython protocol 4 data (FRAME, MEMOIZE, SHORT_BINUNICODE, SHORT_BINBYTES)", () => {
  checkPyObject(unpickle(hex(PY_P4)).value);
});

Deno.test("unpickle: protocol 4 OrderedDict via STACK_GLOBAL", () => {
  const bytes = hex(
    "80049536000000000000008c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c0178944b018c0179945d94284b024b0365752e",
  );
  assert.deepEqual(
    unpickle(bytes, { globals: BASE_GLOBALS }).value,
    new Map<string, unknown>([["x", 1], ["y", [2, 3]]]),
  );
});

Deno.test("unpickle: memo shares objects (a self-referencing list)", () => {
  // l = [1]; l.append(l); pickle.dumps({'a': l, 'b': l}, protocol=2)
  const v = unpickle(hex("80027d71002858010000006171015d7102284b0168026558010000006271036802752e"))
    .value as Map<string, unknown[]>;
  assert.equal(v.get("a"), v.get("b"));
  assert.equal(v.get("a")![1], v.get("a"));
});

Deno.test("unpickle: consecutive pickles are read from `offset`", () => {
  const w = new PickleWriter().proto().int(5).stop().proto().str("x").stop().bytes();
  const first = unpickle(w);
  assert.equal(first.value, 5);
  const second = unpickle(w, { offset: first.end });
  assert.equal(second.value, "x");
  assert.equal(second.end, w.length);
});

Deno.test("unpickle: LONG1 decodes signed little-endian integers", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }), (v) => {
      const got = unpickle(new PickleWriter().proto().long(v).stop().bytes()).value;
      assert.equal(BigInt(got as number | bigint), v);
      assert.equal(typeof got, v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? "number" : "bigint");
    }),
    { seed: 42, numRuns: 300 },
  );
});

const refused: [string, Uint8Array][] = [
  ["os.system", new PickleWriter().proto().global("os", "system").stop().bytes()],
  [
    "builtins.eval",
    new PickleWriter().proto().global("builtins", "eval").tuple((w) => w.str("1+1")).reduce()
      .stop().bytes(),
  ],
  // CPython: pickle.dumps(os.system, protocol=2) and protocol=4 (STACK_GLOBAL)
  ["posix.system", hex("800263706f7369780a73797374656d0a71002e")],
  ["posix.system", hex("80049514000000000000008c05706f736978948c0673797374656d9493942e")],
];

for (const [qualname, bytes] of refused) {
  Deno.test(`unpickle: the global ${qualname} is refused, named in the error`, () => {
    assert.throws(
      () => unpickle(bytes, { name: "evil.pth", globals: TORCH_GLOBALS }),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.match(e.message, /^evil\.pth: refusing to load/);
        assert.ok(e.message.includes(`"${qualname}"`), e.message);
        return true;
      },
    );
  });
}

Deno.test("unpickle: a torch global is refused when not in the supplied table", () => {
  const bytes = new PickleWriter().proto().global("torch._utils", "_rebuild_tensor_v2").stop()
    .bytes();
  assert.ok(unpickle(bytes, { globals: TORCH_GLOBALS }).value);
  assert.throws(() => unpickle(bytes), /torch\._utils\._rebuild_tensor_v2/);
});

Deno.test("unpickle: malformed inputs raise UserError with the file name", () => {
  const cases: [Uint8Array, RegExp][] = [
    [Uint8Array.of(0x80, 0x02), /truncated pickle/],
    [Uint8Array.of(0x80, 0x02, 0xff), /unsupported or corrupt pickle opcode 0xff/],
    [Uint8Array.of(0x80, 0x02, 0x2e), /stack underflow/],
    [Uint8Array.of(0x80, 0x02, 0x68, 0x05, 0x2e), /memo entry 5/],
    [Uint8Array.of(0x80, 0x02, 0x74, 0x2e), /MARK missing/],
    [Uint8Array.of(0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f), /truncated pickle/],
    [
      Uint8Array.of(0x80, 0x02, 0x4b, 1, 0x4b, 2, 0x4b, 3, 0x73, 0x2e),
      /SETITEM\(S\) on a non-dict/,
    ],
    [Uint8Array.of(0x80, 0x02, 0x4b, 0x01, 0x29, 0x52, 0x2e), /REDUCE on a non-callable/],
    [Uint8Array.of(0x80, 0x02, 0x4b, 0x01, 0x51, 0x2e), /persistent ids/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => unpickle(bytes, { name: "x.pkl" }), (e: unknown) => {
      assert.ok(e instanceof UserError, String(e));
      assert.match(e.message, /^x\.pkl: /);
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("unpickle: random bytes never escape as a non-UserError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
      const bytes = Uint8Array.of(0x80, 0x02, ...tail);
      try {
        unpickle(bytes, { globals: TORCH_GLOBALS, persistentLoad: (p) => p });
      } catch (e) {
        assert.ok(e instanceof UserError, `non-UserError: ${e}`);
      }
    }),
    { seed: 7, numRuns: 2000 },
  );
});
