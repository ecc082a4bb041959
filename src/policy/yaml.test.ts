import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { STARTER_POLICY, STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import { digestJson } from "../core/digest.ts";
import { canonicalJson } from "../core/json.ts";
import { loadYaml11, MAX_ALIAS_COPIES } from "./yaml.ts";

function read(text: string): string {
  const loaded = loadYaml11(text, "test.yml");
  assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
  return canonicalJson(loaded.value.value);
}

describe("YAML 1.1 as PyYAML safe_load reads it", () => {
  it("hashes the starter policy as Lumyn 1.3.6 does", () => {
    const loaded = loadYaml11(STARTER_POLICY);
    assert.ok(loaded.ok);
    assert.equal(digestJson(loaded.value.value), STARTER_POLICY_HASH);
  });

  it("resolves scalars with PyYAML's YAML 1.1 rules", () => {
    // Expected output produced by PyYAML 6 (json.dumps(yaml.safe_load(...), sort_keys=True)).
    const text =
      "a: y\nb: 1e5\nc: 1.0e+5\nd: 09\ne: 010\nf: 0x1F\ng: 1:30\nh: 0.70\ni: .5\nj: -.5\nk: 12345678901234567890\nm: on\nn: 100.0\no: -0.0\np: 1.5e+16\nq: 0b101\nr: 1_000\ns: ~\nt: OFF\nu: 1.0e5\nv: +12\n";
    assert.equal(
      read(text),
      '{"a":"y","b":"1e5","c":100000.0,"d":"09","e":8,"f":31,"g":90,"h":0.7,"i":0.5,"j":"-.5","k":12345678901234567890,"m":true,"n":100.0,"o":-0.0,"p":1.5e+16,"q":5,"r":1000,"s":null,"t":false,"u":"1.0e5","v":12}',
    );
  });

  it("reads integers of up to 4,300 digits exactly", () => {
    assert.equal(read(`a: -${"9".repeat(4300)}\n`), `{"a":-${"9".repeat(4300)}}`);
  });

  it("expands aliases and merge keys, explicit keys winning", () => {
    assert.equal(
      read("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n"),
      '{"base":{"x":1,"y":2},"m":{"x":1,"y":3}}',
    );
  });

  it("refuses what JSON cannot hold or what is ambiguous, with line and column", () => {
    const cases: [string, string, number][] = [
      ["a: 2001-12-14\n", "read as a date", 1],
      ["a: 1\nb: .inf\n", "not a finite number", 2],
      ["a: 1\na: 2\n", "", 2],
      ["yes: 1\n", "is not a string", 1],
      ["a: !custom x\n", "", 1],
      ["a: [1, 2\n", "", 2],
      ['a: 1\nb: "p\\ud800"\n', "unpaired UTF-16 surrogate", 2],
      ["a: 1\nb: *nope\n", "refers to no anchor", 2],
      ["a: &x 1\nb: &x 2\n", "defined twice", 2],
      ["a: =\n", "value indicator", 1],
      // Python writes no integer of more than 4,300 digits into the hash; a sexagesimal one grew for 50 s.
      [`a: 1\nb: ${"9".repeat(4301)}\n`, "has more than 4300 digits", 2],
      [`a: 1\nb: -1${":0".repeat(3000)}\n`, "has more than 4300 digits", 2],
      [`a: 0x${"f".repeat(3600)}\n`, "has more than 4300 digits", 1],
    ];
    for (const [text, message, line] of cases) {
      const loaded = loadYaml11(text, "p.yml");
      assert.ok(!loaded.ok, text);
      const problem = loaded.problems[0];
      assert.ok(problem?.message.includes(message), `${text}: ${problem?.message}`);
      assert.equal(problem?.file, "p.yml");
      assert.equal(problem?.line, line, text);
    }
  });

  it("bounds alias expansion (billion laughs)", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++)
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(", ")}]`,
      );
    const loaded = loadYaml11(lines.join("\n"), "bomb.yml");
    assert.ok(!loaded.ok);
    // One line, at the alias whose expansion crossed the bound: it used to be repeated for every node after it.
    assert.deepEqual(
      loaded.problems.map((p) => [p.code, p.message, p.line, p.column]),
      [
        [
          "too_large",
          `document expands to more than ${MAX_ALIAS_COPIES} nodes through aliases (alias expansion is bounded)`,
          5,
          36,
        ],
      ],
    );
  });

  it("bounds only what aliases copy: a large document without aliases is read whole", () => {
    const loaded = loadYaml11(`items: [${"0,".repeat(MAX_ALIAS_COPIES)}1]\n`);
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.problems[0]?.message);
    assert.equal((loaded.value.value as { items: unknown[] }).items.length, MAX_ALIAS_COPIES + 1);
  });

  it("finds where a member is, through aliases and merge keys, as the value was read", () => {
    const loaded = loadYaml11("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nl: [*b, {<<: [*b], z: 1}]\n");
    assert.ok(loaded.ok);
    const { valuePositions, keyPositions } = loaded.value;
    const at = (pointer: string) => [valuePositions.get(pointer), keyPositions.get(pointer)];
    assert.deepEqual(
      at("/m/y"),
      [
        { line: 4, column: 6 },
        { line: 4, column: 3 },
      ],
      "the key written wins",
    );
    assert.deepEqual(
      at("/m/x"),
      [
        { line: 1, column: 14 },
        { line: 1, column: 11 },
      ],
      "merged from base",
    );
    assert.deepEqual(at("/l/1/x"), at("/base/x"));
    assert.deepEqual(at("/l/1/z"), [
      { line: 5, column: 23 },
      { line: 5, column: 20 },
    ]);
    assert.deepEqual(
      at("/l/0/y"),
      [
        { line: 1, column: 20 },
        { line: 1, column: 17 },
      ],
      "through the alias",
    );
    assert.deepEqual(at("/l/2"), [undefined, undefined]);
    assert.deepEqual(at("/m/nope"), [undefined, undefined]);
  });
});
