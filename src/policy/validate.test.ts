import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { STARTER_POLICY } from "../assets/starter-policy.ts";
import { loadPolicy } from "./policy.ts";

const HEADER = `schema_version: policy.v1
policy_id: test
policy_version: "1"
defaults: { mode: enforce, default_verdict: ESCALATE, default_reason_code: NO_MATCH }
rules:
`;

function problemsOf(text: string, registry?: Set<string>) {
  const loaded = loadPolicy(text, { file: "p.yml", ...(registry ? { reasonCodeRegistry: registry } : {}) });
  assert.ok(!loaded.ok, "expected the policy to be refused");
  assert.equal(loaded.kind, "invalid_policy");
  return loaded.problems;
}

describe("policy validation", () => {
  it("accepts the starter policy, both condition forms and the TRUST_PATHS alias", () => {
    assert.ok(loadPolicy(STARTER_POLICY).ok);
    const loaded = loadPolicy(`${HEADER}  - id: N
    stage: TRUST_PATHS
    when: { action_type_in: [a.b, c] }
    if: { amount_usd: { between: [1, 10] }, user.trusted: { eq: true }, subject.roles: { contains: admin }, evidence.note: { matches: "(?i)^ok" } }
    then: { verdict: ALLOW, reason_codes: [CUSTOM_CODE_1] }
`);
    assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
    assert.equal(loaded.value.model.rules[0]?.stage, "ALLOW_PATHS");
  });

  it("reads approval settings with their defaults, and refuses bad ones with line and column", () => {
    const loaded = loadPolicy(`${HEADER}  - id: BIG
    stage: ESCALATIONS
    then:
      verdict: ESCALATE
      reason_codes: [BIG]
      approval: { approver_roles: [finance, finance, cfo], quorum: 2, timeout: 30m, on_timeout: ESCALATE, escalation_roles: [cfo] }
  - id: SMALL
    stage: ESCALATIONS
    then: { verdict: ESCALATE, reason_codes: [SMALL], approval: { approver_roles: [ops] } }
`);
    assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
    assert.deepEqual(
      loaded.value.model.rules.map((rule) => rule.approval),
      [
        {
          approverRoles: ["finance", "cfo"],
          quorum: 2,
          timeout: "30m",
          timeoutMs: 1_800_000,
          onTimeout: "ESCALATE",
          escalationRoles: ["cfo"],
          separationOfDuties: true,
        },
        {
          approverRoles: ["ops"],
          quorum: 1,
          timeout: "24h",
          timeoutMs: 86_400_000,
          onTimeout: "DENY",
          escalationRoles: [],
          separationOfDuties: true,
        },
      ],
    );
    const problems = problemsOf(`${HEADER}  - id: A
    stage: HARD_BLOCKS
    then:
      verdict: DENY
      reason_codes: [A]
      approval:
        approver_roles: [finance]
        quorum: 0
        timeout: 2 weeks
        on_timeout: ESCALATE
        aprover: x
`);
    assert.deepEqual(
      problems.map((p) => [p.pointer, p.code, p.line]),
      [
        ["/rules/0/then/approval/aprover", "unknown_key", 16],
        ["/rules/0/then/approval/quorum", "type", 13],
        ["/rules/0/then/approval/timeout", "type", 14],
        ["/rules/0/then/approval/escalation_roles", "missing_key", 12],
        ["/rules/0/then/approval", "approval_needs_escalate", 12],
      ],
    );
  });

  it("reports every error at once, each with file:line:col, pointer, expectation and suggestion", () => {
    const problems = problemsOf(`${HEADER}  - id: A
    stage: HARD_BLOCK
    if: { evidence.score_gtt: 5, amount_usd: { gtt: 3 } }
    then: { verdict: DENNY, reason_codes: [lower] }
  - id: A
    stage: ESCALATIONS
    if: { amount_usd: { between: [10, 1] }, evidence.name: { matches: "(a" }, evidence.x_gt: ten }
    then: { verdict: ESCALATE, reason_codes: [X], extra: 1 }
`);
    const byPointer = new Map(problems.map((p) => [p.pointer, p]));
    const expectations: [string, string, number, string | undefined][] = [
      ["/rules/0/stage", "enum", 7, "did you mean 'HARD_BLOCKS'?"],
      ["/rules/0/if/evidence.score_gtt", "unknown_condition", 8, "operator did you mean 'gt'?"],
      ["/rules/0/if/amount_usd/gtt", "unknown_operator", 8, "did you mean 'gt'?"],
      ["/rules/0/then/verdict", "enum", 9, "did you mean 'DENY'?"],
      ["/rules/0/then/reason_codes/0", "reason_code", 9, undefined],
      ["/rules/1/id", "duplicate_rule_id", 10, undefined],
      ["/rules/1/if/amount_usd/between", "operand", 12, undefined],
      ["/rules/1/if/evidence.name/matches", "regex", 12, undefined],
      ["/rules/1/if/evidence.x_gt", "operand", 12, undefined],
      ["/rules/1/then/extra", "unknown_key", 13, undefined],
    ];
    for (const [pointer, code, line, hint] of expectations) {
      const problem = byPointer.get(pointer);
      assert.ok(
        problem,
        `no problem reported at ${pointer}: ${JSON.stringify(problems.map((p) => p.pointer))}`,
      );
      assert.equal(problem.code, code, pointer);
      assert.equal(problem.file, "p.yml");
      assert.equal(problem.line, line, pointer);
      assert.ok(typeof problem.column === "number" && problem.column > 0);
      if (hint) assert.equal(problem.hint, hint, pointer);
    }
    assert.equal(problems.length, expectations.length);
  });

  it("takes only a string after starts_with and ends_with, and suggests them for near misses", () => {
    const problems = problemsOf(`${HEADER}  - id: A
    stage: ESCALATIONS
    if: { evidence.note: { starts_with: 5, ends_with: [x] }, evidence.title: { startswith: re } }
    then: { verdict: ESCALATE, reason_codes: [X] }
`);
    assert.deepEqual(
      problems.map((p) => [p.pointer, p.code, p.message, p.expected, p.hint]),
      [
        [
          "/rules/0/if/evidence.note/starts_with",
          "operand",
          "rule A if: evidence.note.starts_with needs a string, not the number 5",
          "a string",
          undefined,
        ],
        [
          "/rules/0/if/evidence.note/ends_with",
          "operand",
          "rule A if: evidence.note.ends_with needs a string, not a list",
          "a string",
          undefined,
        ],
        [
          "/rules/0/if/evidence.title/startswith",
          "unknown_operator",
          "rule A if: unknown operator 'startswith' on 'evidence.title'",
          "one of eq, ne, gt, gte, lt, lte, between, in, not_in, exists, contains, matches, starts_with, ends_with",
          "did you mean 'starts_with'?",
        ],
      ],
    );
  });

  it("reads a condition written as null as no condition, as the reference does", () => {
    const loaded = loadPolicy(
      `${HEADER}  - id: A\n    stage: ESCALATIONS\n    when: null\n    if: null\n    if_any: null\n    then: { verdict: ESCALATE, reason_codes: [X] }\n`,
    );
    assert.ok(loaded.ok);
    assert.deepEqual(
      [
        loaded.value.model.rules[0]?.when,
        loaded.value.model.rules[0]?.if,
        loaded.value.model.rules[0]?.ifAny,
      ],
      [[], [], undefined],
    );
  });

  it("checks the memory section with line:col, and fills in its defaults", () => {
    const loaded = loadPolicy(
      `${HEADER}  - { id: A, stage: ESCALATIONS, then: { verdict: ESCALATE, reason_codes: [X] } }\nmemory: { top_k: 3, block_verdict: ABSTAIN, weights: { amount: 0 }, evidence: { ignore: [note] } }\n`,
    );
    assert.ok(loaded.ok);
    const { memory } = loaded.value.model;
    assert.deepEqual(
      [
        memory.enabled,
        memory.topK,
        memory.blockAt,
        memory.blockVerdict,
        memory.fingerprint.weights.amount,
        memory.fingerprint.ignoreEvidence,
      ],
      [true, 3, 0.9, "ABSTAIN", 0, ["note"]],
    );
    const problems = problemsOf(
      `${HEADER}  - { id: A, stage: ESCALATIONS, then: { verdict: ESCALATE, reason_codes: [X] } }\nmemory:\n  top_k: 0\n  block_at: 1.5\n  scope: tenants\n  weights: { amout: 1 }\n  enabled: yes please\n`,
    );
    assert.deepEqual(
      problems.map((p) => [p.pointer, p.line]),
      [
        ["/memory/enabled", 12],
        ["/memory/top_k", 8],
        ["/memory/scope", 10],
        ["/memory/block_at", 9],
        ["/memory/weights/amout", 11],
      ],
    );
    assert.equal(problems.find((p) => p.pointer === "/memory/scope")?.hint, "did you mean 'tenant'?");
  });

  it("requires the document shape", () => {
    const problems = problemsOf("schema_version: policy.v2\npolicy_version: 1.0\nrules: []\nextra: true\n");
    const codes = problems.map((p) => `${p.pointer}:${p.code}`).sort();
    assert.deepEqual(codes, [
      "/defaults:missing_key",
      "/extra:unknown_key",
      "/policy_id:missing_key",
      "/policy_version:type",
      "/rules:type",
      "/schema_version:enum",
    ]);
  });

  it("turns unknown reason codes into errors when a registry is given", () => {
    const text = `${HEADER}  - id: A\n    stage: ESCALATIONS\n    then: { verdict: ESCALATE, reason_codes: [NO_MATCHH] }\n`;
    assert.ok(loadPolicy(text).ok);
    const problems = problemsOf(text, new Set(["NO_MATCH"]));
    assert.equal(problems[0]?.code, "unknown_reason_code");
    assert.equal(problems[0]?.hint, "did you mean 'NO_MATCH'?");
  });

  it("never throws on arbitrary documents", () => {
    const scalar = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
    const conditionValue = fc.oneof(
      scalar,
      fc.array(scalar),
      fc.dictionary(
        fc.constantFrom("gt", "eq", "between", "in", "matches", "exists", "x"),
        fc.oneof(scalar, fc.array(scalar)),
      ),
    );
    const rule = fc.record(
      {
        id: fc.oneof(fc.string(), fc.integer()),
        stage: fc.constantFrom(
          "REQUIREMENTS",
          "HARD_BLOCKS",
          "ESCALATIONS",
          "ALLOW_PATHS",
          "TRUST_PATHS",
          "OTHER",
        ),
        if: fc.dictionary(
          fc.constantFrom(
            "amount_usd",
            "evidence.a_gt",
            "evidence.b",
            "user.x",
            "action_type",
            "amount_usd_lte",
            "subject",
          ),
          conditionValue,
        ),
        // biome-ignore lint/suspicious/noThenProperty: `then` is the policy key under test.
        then: fc.record(
          {
            verdict: fc.constantFrom("ALLOW", "DENY", "ESCALATE", "ABSTAIN", "MAYBE"),
            reason_codes: fc.array(fc.constantFrom("OK", "bad", "X_1")),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 5 }), fc.anything(), (rules, noise) => {
        const document = {
          schema_version: "policy.v1",
          policy_id: "p",
          policy_version: "1",
          defaults: { mode: "enforce", default_verdict: "ESCALATE", default_reason_code: "D" },
          rules,
          noise,
        };
        const loaded = loadPolicy(JSON.stringify(document));
        assert.ok(loaded.ok || loaded.problems.length > 0);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        const loaded = loadPolicy(text);
        assert.ok(!loaded.ok && loaded.problems.length > 0);
      }),
      { numRuns: 500 },
    );
  });
});
