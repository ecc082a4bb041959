import { readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import type { Command } from "commander";
import {
  type Finding,
  type JsonValue,
  LumynError,
  lintPolicy,
  loadPolicy,
  loadYaml11,
  type Position,
  parseReasonCodeRegistry,
  parseTestSuite,
  workspaceAt,
  workspaceRegistry,
} from "../../index.ts";
import { EXIT, expect, jsonText, readJsonInput, readTextFile, usageError } from "../io.ts";
import { policyLimits } from "../options.ts";

const SEVERITY_RANK = { info: 0, warning: 1, error: 2 } as const;

/**
 * Requests of the test files beside the policy that test it (defaults merged, request files read), or
 * undefined when no test file names the policy.
 */
function testRequestsFor(policyPath: string): JsonValue[] | undefined {
  const folder = dirname(policyPath);
  const requests: JsonValue[] = [];
  let found = false;
  const testFiles = readdirSync(folder).filter((name) => /\.test\.ya?ml$/.test(name));
  for (const name of testFiles) {
    const file = join(folder, name);
    // Test files that do not parse, and request files that cannot be read, are `lumyn test`'s to report.
    const suite = parseTestSuite(readTextFile(file), file);
    if (!suite.ok || resolve(folder, suite.value.policy) !== resolve(policyPath)) continue;
    found = true;
    for (const testCase of suite.value.cases) {
      if (testCase.request !== undefined) requests.push(testCase.request);
      else {
        try {
          requests.push(readJsonInput(resolve(folder, testCase.requestFile as string)));
        } catch (error) {
          if (!(error instanceof LumynError)) throw error;
        }
      }
    }
  }
  return found ? requests : undefined;
}

function locate(
  pointer: string,
  positions: Pick<ReadonlyMap<string, Position>, "get">,
): Position | undefined {
  for (let at = pointer; ; at = at.slice(0, at.lastIndexOf("/"))) {
    const position = positions.get(at);
    if (position || at === "") return position;
  }
}

export function register(program: Command): void {
  program
    .command("lint")
    .description(
      "static checks of a policy: conditions that can never hold, rules that never decide, duplicates, gaps in its tests",
    )
    .option("-p, --policy <file>", "policy file (default: the workspace policy)")
    .option("-w, --workspace <dir>", "workspace whose policy to check", ".lumyn")
    .option(
      "--reason-codes <file>",
      "reason-code registry, to report codes no rule gives (default: the workspace's reason-codes.json)",
    )
    .option(
      "--fail-on <severity>",
      "exit 1 when a finding is at least this severe: error, warning or info",
      "error",
    )
    .option("--json", "print the findings as JSON")
    .action(
      (options: {
        policy?: string;
        workspace: string;
        reasonCodes?: string;
        failOn: string;
        json?: boolean;
      }) => {
        if (!Object.hasOwn(SEVERITY_RANK, options.failOn))
          throw usageError(`--fail-on must be error, warning or info, not '${options.failOn}'`);
        const failOn = SEVERITY_RANK[options.failOn as keyof typeof SEVERITY_RANK];
        const workspace = workspaceAt(options.workspace);
        const path = options.policy ?? workspace.policyPath;
        const text = readTextFile(path);
        const policy = expect(loadPolicy(text, { file: path, ...policyLimits() }));
        const positions = expect(loadYaml11(text, path)).valuePositions;
        const registry = options.reasonCodes
          ? expect(parseReasonCodeRegistry(readTextFile(options.reasonCodes), options.reasonCodes))
          : expect(workspaceRegistry(workspace));
        const testRequests = testRequestsFor(path);
        const findings: Finding[] = lintPolicy(policy, {
          ...(testRequests ? { testRequests } : {}),
          ...(registry ? { reasonCodeRegistry: registry } : {}),
        });
        if (!testRequests) {
          findings.push({
            code: "no_tests",
            severity: "info",
            message: "no *.test.yml beside the policy tests it, so the checks against tests were skipped",
            pointer: "",
            hint: "lumyn init writes an example test file",
          });
        }
        const shown = relative(process.cwd(), path) || path;
        const located = findings.map((finding) => ({
          ...finding,
          ...(locate(finding.pointer, positions) ?? {}),
        }));
        if (options.json) {
          process.stdout.write(jsonText({ file: shown, findings: located.map((f) => ({ ...f })) }, true));
        } else {
          const lines = located.map(
            (f) =>
              `${shown}${"line" in f ? `:${f.line}:${f.column}` : ""}  ${f.severity.padEnd(7)} ${f.code}: ${f.message} (fix: ${f.hint})`,
          );
          const count = (severity: Finding["severity"]) =>
            findings.filter((f) => f.severity === severity).length;
          lines.push(`${count("error")} errors, ${count("warning")} warnings, ${count("info")} notes`);
          process.stdout.write(`${lines.join("\n")}\n`);
        }
        if (findings.some((finding) => SEVERITY_RANK[finding.severity] >= failOn))
          process.exitCode = EXIT.invalid;
      },
    );
}
