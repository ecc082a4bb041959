import type { Command } from "commander";
import {
  decide,
  type Explanation,
  explainDecision,
  explainRequest,
  explanationJson,
  loadPolicy,
  renderExplanation,
} from "../../index.ts";
import { expect, jsonText, readJsonInput, readTextFile } from "../io.ts";
import { addWorkspaceOption, openExistingStore, policyLimits } from "../options.ts";

function print(explanation: Explanation, heading: string, json: boolean, id?: string): void {
  if (json)
    process.stdout.write(
      jsonText({ ...(id ? { decision_id: id } : {}), ...explanationJson(explanation) }, true),
    );
  else process.stdout.write(`${renderExplanation(explanation, heading)}\n`);
}

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("explain")
      .description(
        "explain a decision: each rule, each condition with its actual value, and why the verdict won — a stored decision by id, or with --policy a request file that is not stored",
      )
      .argument(
        "<decision-id | request>",
        "a stored decision's id, or with --policy a request file (- for stdin)",
      ),
  )
    .option("-p, --policy <file>", "explain the request in this file under this policy, storing nothing")
    .option("--json", "print the explanation as JSON")
    .action(async (target: string, options: { workspace?: string; policy?: string; json?: boolean }) => {
      if (options.policy) {
        const policy = expect(
          loadPolicy(readTextFile(options.policy), { file: options.policy, ...policyLimits() }),
        );
        const { record } = expect(decide(readJsonInput(target), policy));
        print(
          explainRequest(record.request, policy),
          `request ${target}: ${record.verdict} ${record.reason_codes.join(", ")}`,
          options.json === true,
        );
        return;
      }
      const store = await openExistingStore(options);
      try {
        const { record, explanation } = expect(
          await explainDecision(store, target, undefined, policyLimits()),
        );
        const heading = `decision ${record.decision_id} at ${record.created_at}: ${record.verdict} ${record.reason_codes.join(", ")}`;
        print(explanation, heading, options.json === true, record.decision_id);
      } finally {
        await store.close();
      }
    });
}
