/**
 * Memory quality, reproducibly: a seeded synthetic workload of benign refunds plus a few fraud rings
 * (clusters of similar requests with noise), decided in arrival order through the real gateway (SQLite
 * store, labels, memory). The first 20% of each ring's requests are labelled `failure` as they arrive; the
 * report says how many of each ring's later requests memory blocked or escalated, and how many benign
 * requests that the policy alone would ALLOW memory blocked or escalated by mistake.
 *
 *   node bench/memory-quality.ts [--seed N] [--json]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { JsonObject, JsonValue } from "../src/core/json.ts";
import { Lumyn } from "../src/lumyn.ts";
import { loadPolicy } from "../src/policy/policy.ts";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.ts";
import { prng } from "./harness.ts";

const { values: options } = parseArgs({
  options: { seed: { type: "string", default: "7" }, json: { type: "boolean", default: false } },
});

const random = prng(Number(options.seed));
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

export const QUALITY_POLICY = `schema_version: policy.v1
policy_id: refunds-with-memory
policy_version: "1"
defaults: { mode: enforce, default_verdict: ESCALATE, default_reason_code: NO_MATCH }
memory:
  # Ids that are unique per request say nothing about a pattern; what a ring shares does.
  evidence:
    ignore: [customer_id, order_id, ticket_id]
    weights: { card_bin: 2, device_id: 2, ip_asn: 2 }
rules:
  - id: SMALL_REFUND
    stage: ALLOW_PATHS
    if: { amount_usd_lte: 400, evidence.chargeback_risk_lt: 0.5 }
    then: { verdict: ALLOW, reason_codes: [SMALL_REFUND] }
`;

const COUNTRIES = ["US", "DE", "FR", "GB", "BR", "IN", "JP", "CA"];

interface Customer {
  readonly id: string;
  readonly country: string;
  readonly cardBin: string;
  readonly device: string;
  readonly asn: number;
  readonly ageDays: number;
  readonly typicalAmount: number;
}

function customer(i: number): Customer {
  return {
    id: `C-${i}`,
    country: pick(COUNTRIES),
    cardBin: String(400000 + Math.floor(random() * 5000)),
    device: `dev-${Math.floor(random() * 1e9).toString(36)}`,
    asn: 1000 + Math.floor(random() * 60000),
    ageDays: 30 + Math.floor(random() * 3000),
    typicalAmount: Math.exp(2 + random() * 4),
  };
}

function request(id: string, who: Customer, amount: number, chargebackRisk: number): JsonObject {
  return {
    schema_version: "decision_request.v1",
    request_id: id,
    tenant: { tenant_id: "acme" },
    subject: { type: "agent", id: "support-agent", roles: ["support"] },
    action: {
      type: "support.refund",
      intent: "refund",
      amount: { value: Math.round(amount * 100) / 100, currency: "USD" },
    },
    evidence: {
      customer_id: who.id,
      order_id: `O-${id}`,
      ticket_id: `T-${id}`,
      country: who.country,
      card_bin: who.cardBin,
      device_id: who.device,
      ip_asn: who.asn,
      customer_age_days: who.ageDays,
      chargeback_risk: Math.round(chargebackRisk * 1000) / 1000,
    },
    context: { mode: "digest_only", digest: `sha256:${"0".repeat(64)}` },
  };
}

interface Arrival {
  readonly request: JsonObject;
  /** The ring the request belongs to, if any. */
  readonly ring?: number;
}

function workload(benignCount: number, rings: number, perRing: number): Arrival[] {
  const customers = Array.from({ length: 2000 }, (_, i) => customer(i));
  const arrivals: Arrival[] = [];
  for (let i = 0; i < benignCount; i++) {
    const who = pick(customers);
    arrivals.push({ request: request(`b${i}`, who, who.typicalAmount * (0.5 + random()), random() * 0.3) });
  }
  for (let ring = 0; ring < rings; ring++) {
    // A ring: one card range, one device farm, one network, brand-new accounts, similar amounts.
    const pattern = {
      country: pick(COUNTRIES),
      cardBin: String(490000 + ring),
      asn: 64000 + ring,
      amount: 150 + random() * 150,
    };
    for (let j = 0; j < perRing; j++) {
      const member: Customer = {
        id: `R${ring}-${j}`,
        country: random() < 0.9 ? pattern.country : pick(COUNTRIES),
        cardBin: pattern.cardBin,
        device: `farm-${ring}-${Math.floor(random() * 3)}`,
        asn: pattern.asn,
        ageDays: Math.floor(random() * 7),
        typicalAmount: pattern.amount,
      };
      arrivals.push({
        request: request(`r${ring}-${j}`, member, pattern.amount * (0.85 + random() * 0.3), random() * 0.3),
        ring,
      });
    }
  }
  // Arrival order: shuffled, so rings trickle in among benign traffic.
  for (let i = arrivals.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [arrivals[i], arrivals[j]] = [arrivals[j] as Arrival, arrivals[i] as Arrival];
  }
  return arrivals;
}

const MEMORY_CODES = new Set(["FAILURE_MEMORY_SIMILAR_BLOCK", "FAILURE_MEMORY_SIMILAR_ESCALATE"]);

async function evaluate(): Promise<JsonObject> {
  const loaded = loadPolicy(QUALITY_POLICY, { file: "quality-policy.yml" });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const dir = mkdtempSync(join(tmpdir(), "lumyn-memory-quality-"));
  const lumyn = new Lumyn({ policy: loaded.value, store: SqliteStore.open(join(dir, "lumyn.db")) });
  const RINGS = 5;
  const PER_RING = 40;
  const LABELLED = Math.round(PER_RING * 0.2);
  const arrivals = workload(5000, RINGS, PER_RING);
  const seenPerRing = new Array<number>(RINGS).fill(0);
  const caught = new Array<number>(RINGS).fill(0);
  const later = new Array<number>(RINGS).fill(0);
  let benignAllowedByPolicy = 0;
  let benignFlagged = 0;
  try {
    for (const arrival of arrivals) {
      const decided = await lumyn.decide(arrival.request as JsonValue);
      if (!decided.ok) throw new Error(JSON.stringify(decided.problems));
      const record = decided.value.record;
      const byMemory = record.reason_codes.some((code) => MEMORY_CODES.has(code));
      if (arrival.ring === undefined) {
        if (record.matched_rules.some((rule) => rule.rule_id === "SMALL_REFUND")) {
          benignAllowedByPolicy++;
          if (byMemory) benignFlagged++;
        }
        continue;
      }
      const index = seenPerRing[arrival.ring] as number;
      seenPerRing[arrival.ring] = index + 1;
      if (index < LABELLED) {
        const labelled = await lumyn.label(record.decision_id, "failure", {
          summary: `fraud ring ${arrival.ring}`,
        });
        if (!labelled.ok) throw new Error(JSON.stringify(labelled.problems));
      } else {
        later[arrival.ring] = (later[arrival.ring] as number) + 1;
        if (record.verdict === "DENY" || record.verdict === "ESCALATE" || record.verdict === "ABSTAIN") {
          if (byMemory) caught[arrival.ring] = (caught[arrival.ring] as number) + 1;
        }
      }
    }
  } finally {
    await lumyn.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const ringRates = caught.map((n, ring) => n / (later[ring] as number));
  return {
    seed: Number(options.seed),
    requests: arrivals.length,
    rings: RINGS,
    requests_per_ring: PER_RING,
    labelled_per_ring: LABELLED,
    ring_later_caught: ringRates,
    ring_later_caught_overall: caught.reduce((a, b) => a + b, 0) / later.reduce((a, b) => a + b, 0),
    benign_allowed_by_policy: benignAllowedByPolicy,
    benign_flagged_by_memory: benignFlagged,
    benign_false_positive_rate: benignFlagged / benignAllowedByPolicy,
  };
}

const report = await evaluate();
if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  const percent = (x: unknown) => `${(100 * Number(x)).toFixed(1)}%`;
  const rates = (report.ring_later_caught as number[]).map(percent).join(", ");
  const pass =
    Number(report.ring_later_caught_overall) >= 0.8 && Number(report.benign_false_positive_rate) <= 0.01;
  const lines = [
    `memory quality (seed ${report.seed}): ${report.requests} requests, ${report.rings} fraud rings of ${report.requests_per_ring}, first ${report.labelled_per_ring} of each labelled failure`,
    `  later ring requests blocked or escalated by memory: ${percent(report.ring_later_caught_overall)} (per ring: ${rates})   target >= 80%`,
    `  benign requests the policy allows, flagged by memory: ${report.benign_flagged_by_memory} of ${report.benign_allowed_by_policy} = ${percent(report.benign_false_positive_rate)}   target <= 1%`,
    pass ? "PASS" : "FAIL",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}
