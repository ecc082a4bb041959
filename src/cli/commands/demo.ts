import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import {
  decide,
  EXAMPLE_REQUESTS,
  type JsonObject,
  type JsonValue,
  packDecision,
  readPack,
  renderExplanation,
  replayPack,
  verifyStoreChain,
} from "../../index.ts";
import { expect } from "../io.ts";
import { addWorkspaceOption, openLumyn } from "../options.ts";

const say = (text = ""): void => {
  process.stdout.write(`${text}\n`);
};

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("demo")
      .description(
        "a guided tour: decide four refunds on the embedded store, explain one, label one, prove one offline",
      ),
  ).action(async (options: { workspace?: string }) => {
    const lumyn = await openLumyn(options);
    const run = randomBytes(4).toString("hex");
    try {
      const { policy } = lumyn;
      say("Lumyn decides whether an agent's risky action should happen, and keeps a record of every answer.");
      say(`Workspace: ${options.workspace}  (SQLite store and policy.yml)`);
      say(
        `Policy:    ${policy.model.policyId} ${policy.model.policyVersion}, ${policy.model.rules.length} rules`,
      );
      say(`           policy_hash ${policy.hash}`);
      say();
      say("1. A support agent asks four times whether it may refund a customer:");
      const ids: string[] = [];
      const requests = Object.values(EXAMPLE_REQUESTS).map((example) => {
        const request = example.request as JsonObject;
        return {
          title: example.title,
          request: { ...request, request_id: `${String(request.request_id)}-${run}` },
        };
      });
      const firstRequest = requests[0]?.request;
      for (const example of requests) {
        const { record } = expect(await lumyn.decide(example.request as JsonValue));
        ids.push(record.decision_id);
        say(`   ${record.verdict.padEnd(8)} ${example.title}`);
        say(`            reasons ${record.reason_codes.join(", ")}   id ${record.decision_id}`);
      }
      say();
      say("2. Asking again with the same request_id returns the stored decision, not a new one:");
      const repeated = expect(await lumyn.decide(firstRequest as JsonValue));
      say(
        `   ${repeated.record.decision_id} (${repeated.status}; same id as before: ${repeated.record.decision_id === ids[0]})`,
      );
      say();
      say("3. Why was the large refund escalated? (lumyn explain ID)");
      const { explanation } = expect(await lumyn.explain(ids[2] as string));
      const matched = { ...explanation, rules: explanation.rules.filter((trace) => trace.matched) };
      for (const line of renderExplanation(matched).split("\n")) say(`   ${line}`);
      say();
      say("4. Every record carries digests that let anyone re-check it offline:");
      const stored = expect(await lumyn.show(ids[0] as string));
      const again = expect(decide(firstRequest as JsonValue, lumyn.policy));
      say(`   stored:      ${stored.verdict} inputs_digest ${stored.determinism.inputs_digest}`);
      say(`   re-decided:  ${again.record.verdict} inputs_digest ${again.record.determinism.inputs_digest}`);
      say(
        `   same request + same policy_hash → same digest and verdict (and the same in Lumyn 1.3.6, the Python reference)`,
      );
      say();
      const stats = await lumyn.stats({ by: "verdict" });
      say(
        `5. Stored so far: ${stats.total} decisions (${stats.groups.map((g) => `${g.key} ${g.count}`).join(", ")})`,
      );
      say();
      say("6. The first refund turns out to be fraud. Label it (lumyn label ID --label failure):");
      expect(
        await lumyn.label(ids[0] as string, "failure", { summary: "chargeback: the customer never ordered" }),
      );
      const lookalike = expect(
        await lumyn.decide({ ...(firstRequest as JsonObject), request_id: `lookalike-${run}` } as JsonValue),
      );
      say(
        `   the same refund asked again: ${lookalike.record.verdict} ${lookalike.record.reason_codes.join(", ")}`,
      );
      say("   (memory found a labelled failure this close; rules stay as they were, nothing was retrained)");
      say();
      say("7. Proof for an auditor: the escalated refund as a decision pack, checked and re-run offline");
      const { bytes } = expect(await packDecision(lumyn.store, ids[2] as string));
      const report = expect(replayPack(expect(readPack(bytes, "pack.zip")), "pack.zip"));
      say(
        `   ${bytes.length}-byte pack: ${report.checks.filter((c) => c.ok).length}/${report.checks.length} checks pass, replayed ${report.replayedVerdict}: ${report.identical ? "identical" : "DIFFERENT"}  (lumyn export ID --pack; lumyn replay FILE)`,
      );
      const chain = await verifyStoreChain(lumyn.store);
      say(
        `   the tamper-evident log: ${chain.length} entries chained, ${chain.broken ? `BROKEN at entry ${chain.broken.seq}` : "intact"}, head ${chain.headHash.slice(0, 23)}…  (lumyn verify)`,
      );
      say();
      say("Next:");
      say(`   npx lumyn show ${ids[0]} --workspace ${options.workspace}`);
      say(`   npx lumyn explain ${ids[1]} --workspace ${options.workspace}`);
      say(`   npx lumyn stats --by reason_code --workspace ${options.workspace}`);
      say(`   npx lumyn export ${ids[2]} --pack --workspace ${options.workspace}`);
      say(
        `   npx lumyn serve --no-auth --workspace ${options.workspace}   # the HTTP service on 127.0.0.1:8787`,
      );
      say(`   npx lumyn init --workspace my-lumyn   # your own workspace with the starter policy to edit`);
    } finally {
      await lumyn.close();
    }
  });
}
