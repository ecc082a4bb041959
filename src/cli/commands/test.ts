import { readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import type { Command } from "commander";
import {
  type CaseResult,
  type Coverage,
  coverageOf,
  formatProblem,
  type JsonObject,
  LumynError,
  loadPolicy,
  type Policy,
  parseTestSuite,
  renderExplanation,
  runCase,
  stringify,
  type TestCase,
  workspaceAt,
} from "../../index.ts";
import { EXIT, emit, expect, jsonText, readJsonInput, readTextFile, usageError } from "../io.ts";
import { policyLimits } from "../options.ts";

interface FileReport {
  readonly file: string;
  readonly policy: Policy;
  readonly results: readonly CaseResult[];
  readonly coverage: Coverage;
}

const TEST_FILE = /\.test\.ya?ml$/;

/** Test files named on the command line: files as they are, folders searched for `*.test.yml`. */
function findTestFiles(paths: readonly string[]): string[] {
  const found: string[] = [];
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const child = join(path, entry.name);
      if (entry.isDirectory() && entry.name !== "node_modules" && !entry.name.startsWith(".")) walk(child);
      else if (entry.isFile() && TEST_FILE.test(entry.name)) found.push(child);
    }
  };
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      throw usageError(`${path}: no such file or folder`);
    }
    if (isDirectory) walk(path);
    else found.push(path);
  }
  if (found.length === 0) throw usageError(`no *.test.yml files in ${paths.join(", ")}`);
  return found;
}

function runFile(file: string, policies: Map<string, Policy>): FileReport {
  const suite = expect(parseTestSuite(readTextFile(file), file));
  const policyPath = resolve(dirname(file), suite.policy);
  let policy = policies.get(policyPath);
  if (!policy) {
    policy = expect(
      loadPolicy(readTextFile(policyPath), {
        file: relative(process.cwd(), policyPath) || policyPath,
        ...policyLimits(),
      }),
    );
    policies.set(policyPath, policy);
  }
  const run = (testCase: TestCase): CaseResult => {
    if (testCase.request !== undefined) return runCase(policy, testCase, testCase.request);
    try {
      return runCase(policy, testCase, readJsonInput(resolve(dirname(file), testCase.requestFile as string)));
    } catch (error) {
      // A request file that cannot be read or parsed fails its case, not the run.
      if (!(error instanceof LumynError)) throw error;
      return {
        name: testCase.name,
        passed: false,
        mismatches: [],
        problems: error.problems,
        traces: [],
        durationMs: 0,
      };
    }
  };
  const results = suite.cases.map(run);
  return { file, policy, results, coverage: coverageOf(policy, results) };
}

function renderFailure(result: CaseResult): string[] {
  if (result.problems) return result.problems.map((problem) => `      request: ${formatProblem(problem)}`);
  const lines = result.mismatches.map(
    (m) => `      ${m.field.padEnd(14)} expected ${stringify(m.expected)}, got ${stringify(m.actual)}`,
  );
  const expectedRules = new Set(
    result.mismatches.flatMap((m) => (m.field === "matched_rules" ? (m.expected as string[]) : [])),
  );
  const involved = result.traces.filter((trace) => trace.matched || expectedRules.has(trace.rule.id));
  if (involved.length > 0 && result.record) {
    lines.push("      rules involved:");
    const explanation = {
      verdict: result.record.verdict,
      policy: result.record.policy,
      rules: involved,
      because: "",
    };
    const trace = renderExplanation(explanation).split("\n").slice(3);
    lines.push(...trace.map((line) => `        ${line}`));
  }
  return lines;
}

function renderCoverage(coverage: Coverage): string[] {
  const matchedRules = coverage.rules.filter((rule) => rule.matches > 0).length;
  const bothWays = coverage.conditions.filter((c) => c.seenTrue && c.seenFalse).length;
  const lines = [
    `  coverage: rules ${matchedRules}/${coverage.rules.length} (${coverage.rulePercent.toFixed(1)}%), conditions seen true and false ${bothWays}/${coverage.conditions.length} (${coverage.conditionPercent.toFixed(1)}%)`,
  ];
  const width = Math.max(...coverage.rules.map((rule) => rule.ruleId.length));
  for (const rule of coverage.rules) {
    lines.push(
      `    ${rule.ruleId.padEnd(width)}  ${rule.stage.padEnd(12)}  ${rule.matches} case${rule.matches === 1 ? "" : "s"}${rule.matches === 0 ? "  ← never matched" : ""}`,
    );
  }
  const partial = coverage.conditions.filter((c) => !(c.seenTrue && c.seenFalse));
  if (partial.length > 0) {
    lines.push("    conditions not seen both ways:");
    for (const c of partial)
      lines.push(
        `      ${c.ruleId} ${c.key} (${c.pointer}): ${c.seenTrue ? "only true" : c.seenFalse ? "only false" : "never evaluated"}`,
      );
  }
  return lines;
}

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function junit(reports: readonly FileReport[]): string {
  const suites = reports.map((report) => {
    const failures = report.results.filter((r) => !r.passed).length;
    const seconds = report.results.reduce((sum, r) => sum + r.durationMs, 0) / 1000;
    const cases = report.results.map((result) => {
      const time = (result.durationMs / 1000).toFixed(4);
      const open = `    <testcase classname="${xml(report.file)}" name="${xml(result.name)}" time="${time}"`;
      if (result.passed) return `${open}/>`;
      const message = result.problems ? "invalid request" : result.mismatches.map((m) => m.field).join(", ");
      return `${open}>\n      <failure message="${xml(message)}">${xml(renderFailure(result).join("\n"))}</failure>\n    </testcase>`;
    });
    return `  <testsuite name="${xml(report.file)}" tests="${report.results.length}" failures="${failures}" time="${seconds.toFixed(4)}">\n${cases.join("\n")}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${suites.join("\n")}\n</testsuites>\n`;
}

function jsonReport(reports: readonly FileReport[], withCoverage: boolean): JsonObject {
  return {
    files: reports.map((report) => ({
      file: report.file,
      policy: {
        policy_id: report.policy.model.policyId,
        policy_version: report.policy.model.policyVersion,
        policy_hash: report.policy.hash,
      },
      cases: report.results.map((result) => ({
        name: result.name,
        passed: result.passed,
        mismatches: result.mismatches.map((m) => ({
          field: m.field,
          expected: m.expected,
          actual: m.actual,
        })),
        ...(result.problems ? { problems: result.problems.map((p) => formatProblem(p)) } : {}),
      })),
      ...(withCoverage
        ? {
            coverage: {
              rule_percent: report.coverage.rulePercent,
              condition_percent: report.coverage.conditionPercent,
              rules: report.coverage.rules.map((r) => ({
                rule_id: r.ruleId,
                stage: r.stage,
                matches: r.matches,
              })),
              conditions: report.coverage.conditions.map((c) => ({
                rule_id: c.ruleId,
                key: c.key,
                pointer: c.pointer,
                seen_true: c.seenTrue,
                seen_false: c.seenFalse,
              })),
            },
          }
        : {}),
    })),
    passed: reports.reduce((n, r) => n + r.results.filter((c) => c.passed).length, 0),
    failed: reports.reduce((n, r) => n + r.results.filter((c) => !c.passed).length, 0),
  };
}

export function register(program: Command): void {
  program
    .command("test")
    .description(
      "run policy test files (*.test.yml): one line per case, a diff and the rules involved for a failure",
    )
    .argument("[paths...]", "test files or folders to search (default: the workspace)")
    .option("-w, --workspace <dir>", "workspace searched when no path is given", ".lumyn")
    .option(
      "--coverage",
      "report how many cases matched each rule and which conditions were seen true and false",
    )
    .option(
      "--min-coverage <percent>",
      "fail when a policy's rule coverage is below this (implies --coverage)",
    )
    .option("--json", "print the report as JSON")
    .option("--junit <file>", "also write a JUnit XML report")
    .action(
      (
        paths: string[],
        options: {
          workspace: string;
          coverage?: boolean;
          minCoverage?: string;
          json?: boolean;
          junit?: string;
        },
      ) => {
        const minimum = options.minCoverage === undefined ? undefined : Number(options.minCoverage);
        if (minimum !== undefined && !(minimum >= 0 && minimum <= 100)) {
          throw usageError(`--min-coverage must be a percentage from 0 to 100, not '${options.minCoverage}'`);
        }
        const withCoverage = options.coverage === true || minimum !== undefined;
        const files = findTestFiles(paths.length > 0 ? paths : [workspaceAt(options.workspace).dir]);
        const policies = new Map<string, Policy>();
        const reports = files.map((file) => runFile(file, policies));
        const failed = reports.reduce((n, r) => n + r.results.filter((c) => !c.passed).length, 0);
        const passed = reports.reduce((n, r) => n + r.results.length, 0) - failed;
        // --min-coverage holds per policy, over all the cases of all the files that test it.
        const byPolicy = new Map<Policy, CaseResult[]>();
        for (const report of reports)
          byPolicy.set(report.policy, [...(byPolicy.get(report.policy) ?? []), ...report.results]);
        const belowMinimum =
          minimum === undefined
            ? []
            : [...byPolicy]
                .map(([policy, results]) => ({ policy, coverage: coverageOf(policy, results) }))
                .filter((p) => p.coverage.rulePercent < minimum);
        if (options.junit) emit(junit(reports), options.junit);
        if (options.json) {
          process.stdout.write(jsonText(jsonReport(reports, withCoverage), true));
        } else {
          const lines: string[] = [];
          for (const report of reports) {
            const { policyId, policyVersion } = report.policy.model;
            lines.push(
              `${relative(process.cwd(), report.file) || report.file}  (${policyId} ${policyVersion})`,
            );
            for (const result of report.results) {
              lines.push(`  ${result.passed ? "✓" : "✗"} ${result.name}`);
              if (!result.passed) lines.push(...renderFailure(result));
            }
            if (withCoverage) lines.push(...renderCoverage(report.coverage));
          }
          for (const { policy, coverage } of belowMinimum) {
            lines.push(
              `coverage of policy ${policy.model.policyId} ${policy.model.policyVersion}: ${coverage.rulePercent.toFixed(1)}% of rules matched, below --min-coverage ${minimum}%`,
            );
          }
          lines.push(`${passed} passed, ${failed} failed`);
          process.stdout.write(`${lines.join("\n")}\n`);
        }
        if (failed > 0 || belowMinimum.length > 0) process.exitCode = EXIT.invalid;
      },
    );
}
