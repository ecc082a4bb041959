import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { generatePolicySchema, POLICY_SCHEMA } from "../../scripts/generate-policy-schema.ts";
import { STARTER_POLICY } from "../assets/starter-policy.ts";
import { STARTER_POLICY_TESTS } from "../assets/starter-policy-tests.ts";
import { parseTestSuite } from "../authoring/test-suite.ts";
import { canonicalJson } from "../core/json.ts";
import policySchema from "../schemas/policy.v1.schema.json" with { type: "json" };
import testSchema from "../schemas/policy-test.v1.schema.json" with { type: "json" };
import { loadPolicy } from "./policy.ts";
import { loadYaml11 } from "./yaml.ts";

const ajv = new Ajv2020({ allErrors: true, strict: false });
const schemaAccepts = ajv.compile(policySchema);
const testSchemaAccepts = ajv.compile(testSchema);

function plain(text: string): unknown {
  const loaded = loadYaml11(text);
  assert.ok(loaded.ok);
  return JSON.parse(canonicalJson(loaded.value.value));
}

const HEAD = `schema_version: policy.v1
policy_id: p
policy_version: "1"
defaults: { mode: enforce, default_verdict: ESCALATE, default_reason_code: NO_MATCH }
`;
const rule = (body: string): string =>
  `${HEAD}rules:\n  - id: A\n    stage: ESCALATIONS\n${body}    then: { verdict: ESCALATE, reason_codes: [X] }\n`;

/** Documents both must accept, and documents both must refuse (shape errors: what a schema can express). */
const GOOD = [
  STARTER_POLICY,
  rule(
    "    when: { action_type_in: [a.b, c] }\n    if: { amount_usd: { between: [1, 10] }, user.trusted: { eq: true }, evidence.x_gt: 3 }\n",
  ),
  rule("    if_any: [{ subject.roles: { contains: admin } }, { evidence.note: { matches: '^ok' } }]\n"),
  rule("    if: { evidence.note: { starts_with: 're:', ends_with: '?' } }\n"),
  rule(
    "    if: { evidence.tier_in: [gold, silver], evidence.tier_is: gold, evidence.y_ne: null, missing: { exists: false } }\n",
  ),
  rule("    when: null\n    if: null\n"),
  rule(
    "    if: { amount_usd_gt: 200, amount_currency_ne: USD, amount_currency_is: EUR, action_type: support.refund }\n",
  ),
  rule("    if: { evidence.score: { gte: 0.2, lt: 0.9, ne: 0.5, not_in: [0.3], in: [0.2, 0.4] } }\n"),
  `${HEAD}rules:\n  - { id: T, stage: TRUST_PATHS, description: alias, then: { verdict: ALLOW, reason_codes: [OK], obligations: [{ type: log, severity: info }] } }\n`,
  `${HEAD.replace("default_reason_code: NO_MATCH }", "default_reason_code: NO_MATCH, approval: { approver_roles: [ops] } }")}rules:\n  - { id: A, stage: ESCALATIONS, then: { verdict: ESCALATE, reason_codes: [X], approval: { approver_roles: [finance, cfo], quorum: 2, timeout: 30m, on_timeout: ESCALATE, escalation_roles: [cfo], separation_of_duties: false } } }\n`,
];
const velocity = (section: string): string =>
  `${HEAD}velocity:\n${section}rules:\n  - { id: A, stage: ESCALATIONS, if: { velocity.m: { gt: 3 } }, then: { verdict: ESCALATE, reason_codes: [X] } }\n`;
GOOD.push(
  velocity(
    "  m: { count: decisions, where: { verdict: [DENY], action_type: [a.b] }, group_by: subject.id, window: 1h }\n",
  ),
  velocity(
    "  m: { sum: amount_usd, window: today }\n  n: { sum: action.amount.value, group_by: tenant.tenant_id, window: 7d }\n",
  ),
);
const memory = (section: string): string =>
  `${HEAD}memory: ${section}\nrules:\n  - { id: A, stage: ESCALATIONS, then: { verdict: ESCALATE, reason_codes: [X] } }\n`;
GOOD.push(
  memory(
    "{ enabled: true, top_k: 3, scope: tenant, block_at: 0.95, escalate_at: 0.8, allow_at: 0.99, block_verdict: ABSTAIN }",
  ),
  memory(
    "{ weights: { amount: 3, tags: 0 }, evidence: { include: [a, b.c], ignore: [d], weights: { a: 2 } } }",
  ),
);
const approval = (settings: string): string =>
  `${HEAD}rules:\n  - { id: A, stage: ESCALATIONS, then: { verdict: ESCALATE, reason_codes: [X], approval: ${settings} } }\n`;
const BAD = [
  approval("{ approver_roles: [] }"),
  approval("{ approver_roles: [finance], quorum: 0 }"),
  approval("{ approver_roles: [finance], timeout: 30 minutes }"),
  approval("{ approver_roles: [finance], on_timeout: ESCALATE }"),
  approval("{ approver_roles: [finance], on_timeout: ALLOW }"),
  approval("{ approver_roles: [finance], separation_of_duties: maybe }"),
  approval("{ approver_roles: [finance], approvers: 2 }"),
  approval("{ quorum: 1 }"),
  rule("    if: { evidence.x_gt: ten }\n"),
  rule("    if: { amount_usd: { gtt: 3 } }\n"),
  rule("    if: { evidence.score: { between: [1] } }\n"),
  rule("    if: { evidence.x_in: notalist }\n"),
  rule("    if: { user.trusted: { exists: maybe } }\n"),
  rule("    if: { evidence.name: { matches: 5 } }\n"),
  rule("    if: { evidence.name: { starts_with: 5 } }\n"),
  rule("    if: { evidence.name: { ends_with: [a] } }\n"),
  rule("    if: { evidence.score: {} }\n"),
  rule("    if_all: { evidence.x_is: 1 }\n"),
  rule("    unknown: 1\n"),
  HEAD.replace("policy.v1", "policy.v2") +
    "rules:\n  - { id: A, stage: ESCALATIONS, then: { verdict: ESCALATE, reason_codes: [X] } }\n",
  HEAD.replace('policy_version: "1"', "policy_version: 1.0") +
    "rules:\n  - { id: A, stage: ESCALATIONS, then: { verdict: ESCALATE, reason_codes: [X] } }\n",
  `${HEAD}rules: []\n`,
  `${HEAD}rules:\n  - { id: A, stage: HARD_BLOCK, then: { verdict: DENY, reason_codes: [X] } }\n`,
  `${HEAD}rules:\n  - { id: A, stage: HARD_BLOCKS, then: { verdict: DENY, reason_codes: [lower] } }\n`,
  `${HEAD}rules:\n  - { id: A, stage: HARD_BLOCKS, then: { verdict: MAYBE, reason_codes: [X] } }\n`,
  `${HEAD}rules:\n  - { id: A, stage: HARD_BLOCKS, then: { verdict: DENY, reason_codes: [X], obligations: [{ type: chek }] } }\n`,
  `${HEAD}rules:\n  - { id: A, stage: HARD_BLOCKS }\n`,
  velocity("  m: { count: decisions, sum: amount_usd, window: 1h }\n"),
  velocity("  m: { count: rows, window: 1h }\n"),
  velocity("  m: { count: decisions, window: forever }\n"),
  velocity("  m: { count: decisions, window: 1h, where: { verdict: [NOPE] } }\n"),
  velocity("  m: { count: decisions }\n"),
  velocity("  M: { count: decisions, window: 1h }\n"),
  memory("{ top_k: 0 }"),
  memory("{ scope: everything }"),
  memory("{ block_at: 1.5 }"),
  memory("{ block_verdict: ESCALATE }"),
  memory("{ weights: { colour: 1 } }"),
  memory("{ evidence: { only: [a] } }"),
  `${HEAD.replace("mode: enforce", "mode: strict")}rules:\n  - { id: A, stage: HARD_BLOCKS, then: { verdict: DENY, reason_codes: [X] } }\n`,
];

describe("the shipped JSON Schemas", () => {
  it("policy.v1 is what scripts/generate-policy-schema.ts writes from the operator table (run `npm run generate`)", () => {
    assert.equal(readFileSync(POLICY_SCHEMA, "utf8"), generatePolicySchema());
  });

  it("accept and refuse the same policies as the validator", () => {
    for (const text of GOOD) {
      const loaded = loadPolicy(text);
      assert.ok(
        loaded.ok,
        `validator refuses:\n${text}\n${loaded.ok ? "" : JSON.stringify(loaded.problems)}`,
      );
      assert.ok(
        schemaAccepts(plain(text)),
        `schema refuses:\n${text}\n${JSON.stringify(schemaAccepts.errors)}`,
      );
    }
    for (const text of BAD) {
      assert.equal(loadPolicy(text).ok, false, `validator accepts:\n${text}`);
      assert.equal(schemaAccepts(plain(text)), false, `schema accepts:\n${text}`);
    }
  });

  it("describe test files as the test runner reads them", () => {
    assert.ok(parseTestSuite(STARTER_POLICY_TESTS, "t.yml").ok);
    assert.ok(testSchemaAccepts(plain(STARTER_POLICY_TESTS)), JSON.stringify(testSchemaAccepts.errors));
    const bad = [
      "policy: p.yml\ncases: []\n",
      "policy: p.yml\ncases:\n  - { name: x, expect: { verdict: ALLOW } }\n",
      "policy: p.yml\ncases:\n  - { name: x, request: {}, request_file: r.json, expect: { verdict: ALLOW } }\n",
      "policy: p.yml\ncases:\n  - { name: x, request: {}, expect: { verdikt: ALLOW } }\n",
      "policy: p.yml\ncases:\n  - { name: x, request: {}, expect: { reason_codes: { has: [X] } } }\n",
      "cases:\n  - { name: x, request: {}, expect: { verdict: ALLOW } }\n",
    ];
    for (const text of bad) {
      assert.equal(parseTestSuite(text, "t.yml").ok, false, `runner accepts:\n${text}`);
      assert.equal(testSchemaAccepts(plain(text)), false, `schema accepts:\n${text}`);
    }
  });
});
