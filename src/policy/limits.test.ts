import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { STARTER_POLICY } from "../assets/starter-policy.ts";
import type { Problem, Result } from "../core/problem.ts";
import { manyRulesPolicy } from "../testing/many-rules.ts";
import { DEFAULT_POLICY_MAX_BYTES, DEFAULT_POLICY_MAX_RULES, loadPolicy } from "./policy.ts";

function problemsOf(result: Result<unknown>): readonly Problem[] {
  return result.ok ? [] : result.problems;
}

describe("policy limits", () => {
  it("refuses a policy over the size limit before reading it, saying which limit and the figure", () => {
    const huge = manyRulesPolicy(50_000);
    assert.ok(huge.length > 8_000_000);
    const loaded = loadPolicy(huge, { file: "huge.yml" });
    assert.ok(!loaded.ok);
    assert.deepEqual(loaded.problems, [
      {
        code: "too_large",
        message: `policy is ${huge.length} bytes, over the size limit of ${DEFAULT_POLICY_MAX_BYTES} bytes (policy_max_bytes)`,
        expected: `a policy of at most ${DEFAULT_POLICY_MAX_BYTES} bytes`,
        file: "huge.yml",
      },
    ]);
    // A long string is no different, and the text past the limit is never parsed: its errors are not seen.
    const string = `${STARTER_POLICY}extensions: {note: "${"x".repeat(DEFAULT_POLICY_MAX_BYTES)}"}\n: : [\n`;
    assert.deepEqual(
      problemsOf(loadPolicy(string)).map((p) => p.code),
      ["too_large"],
    );
    // Bytes, not characters: 400,000 three-byte characters are 1.2 MB.
    const wide = `${STARTER_POLICY}extensions: {note: "${"€".repeat(400_000)}"}\n`;
    assert.ok(wide.length < DEFAULT_POLICY_MAX_BYTES);
    assert.match(
      problemsOf(loadPolicy(wide))[0]?.message ?? "",
      new RegExp(`^policy is ${Buffer.byteLength(wide)} bytes`),
    );
    assert.ok(loadPolicy(wide, { maxBytes: 2 * 1024 * 1024 }).ok);
  });

  it("refuses more rules than the limit before validating them, and names neither aliases nor the rules' faults", () => {
    // 10,001 rules, each invalid: only the limit is reported, so no rule was validated.
    let text = manyRulesPolicy(0);
    for (let i = 0; i <= DEFAULT_POLICY_MAX_RULES; i++) text += `  - {id: R${i}, stage: NOPE}\n`;
    const loaded = loadPolicy(text, { file: "many.yml" });
    assert.ok(!loaded.ok);
    assert.deepEqual(loaded.problems, [
      {
        code: "too_many_rules",
        message: `policy has ${DEFAULT_POLICY_MAX_RULES + 1} rules, over the limit of ${DEFAULT_POLICY_MAX_RULES} rules (policy_max_rules)`,
        pointer: "/rules",
        expected: `at most ${DEFAULT_POLICY_MAX_RULES} rules`,
        file: "many.yml",
        line: 6,
        column: 3,
      },
    ]);
    const three = manyRulesPolicy(3);
    assert.equal(problemsOf(loadPolicy(three, { maxRules: 2 }))[0]?.code, "too_many_rules");
    assert.ok(loadPolicy(three, { maxRules: 3 }).ok);
  });

  it("loads 6,000 rules (1 MB, without a single alias) within the default limits", () => {
    const text = manyRulesPolicy(6_000);
    assert.ok(Buffer.byteLength(text) <= DEFAULT_POLICY_MAX_BYTES);
    const loaded = loadPolicy(text);
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.problems[0]?.message);
    assert.equal(loaded.value.model.rules.length, 6_000);
  });
});
