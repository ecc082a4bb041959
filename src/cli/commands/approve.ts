import type { Command } from "commander";
import { registerVote } from "../approval-io.ts";

/** `lumyn approve ID --actor A --role R --justification TEXT`. */
export function register(program: Command): void {
  registerVote(program, "approve");
}
