import { existsSync, mkdirSync } from "node:fs";
import { join, relative } from "node:path";
import type { Command } from "commander";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { STARTER_POLICY } from "../../assets/starter-policy.ts";
import { STARTER_POLICY_TESTS } from "../../assets/starter-policy-tests.ts";
import { stringify } from "../../core/json.ts";
import policySchema from "../../schemas/policy.v1.schema.json" with { type: "json" };
import testSchema from "../../schemas/policy-test.v1.schema.json" with { type: "json" };
import { workspaceAt, writeFileAtomic } from "../../workspace.ts";
import { addWorkspaceOption, openSelectedStore, storeLocation } from "../options.ts";

const POLICY_SCHEMA_PATH = "schemas/policy.v1.schema.json";
const TEST_SCHEMA_PATH = "schemas/policy-test.v1.schema.json";

export function register(program: Command): void {
  addWorkspaceOption(
    program.command("init").description("create a workspace with a starter policy and example requests"),
  )
    .option("--force", "overwrite an existing policy and examples")
    .action(async (options: { workspace?: string; store?: string; force?: boolean }) => {
      const workspace = workspaceAt(options.workspace);
      // The store first: a bad or unreachable --store is reported before anything is written.
      const location = storeLocation(options);
      await (await openSelectedStore(location)).close();
      const examples = join(workspace.dir, "examples");
      mkdirSync(examples, { recursive: true });
      const written: string[] = [];
      const kept: string[] = [];
      const write = (path: string, text: string): void => {
        if (existsSync(path) && !options.force) kept.push(path);
        else {
          writeFileAtomic(path, text);
          written.push(path);
        }
      };
      // Editors with the YAML language server complete and check the files against these schemas.
      mkdirSync(join(workspace.dir, "schemas"), { recursive: true });
      write(join(workspace.dir, POLICY_SCHEMA_PATH), `${JSON.stringify(policySchema, null, 2)}\n`);
      write(join(workspace.dir, TEST_SCHEMA_PATH), `${JSON.stringify(testSchema, null, 2)}\n`);
      write(
        workspace.policyPath,
        `# yaml-language-server: $schema=./${POLICY_SCHEMA_PATH}\n${STARTER_POLICY}`,
      );
      write(
        join(workspace.dir, "policy.test.yml"),
        `# yaml-language-server: $schema=./${TEST_SCHEMA_PATH}\n${STARTER_POLICY_TESTS}`,
      );
      for (const [name, example] of Object.entries(EXAMPLE_REQUESTS)) {
        write(join(examples, `${name}.json`), `${stringify(example.request as never, { indent: 2 })}\n`);
      }
      const show = (path: string): string => relative(process.cwd(), path) || path;
      for (const path of written) process.stdout.write(`wrote ${show(path)}\n`);
      for (const path of kept) process.stdout.write(`kept  ${show(path)} (exists; --force to overwrite)\n`);
      process.stdout.write(
        `store ${location.kind === "sqlite" ? show(location.path) : location.display}\n\nnext: lumyn test --workspace ${show(workspace.dir)} --coverage\n      lumyn decide ${show(join(examples, "refund-small.json"))} --workspace ${show(workspace.dir)} --pretty\n`,
      );
    });
}
