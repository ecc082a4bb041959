import type { Command } from "commander";
import { registerVote } from "../approval-io.ts";

/** `lumyn reject ID --actor A --role R --justification TEXT`: one rejection rejects. */
export function register(program: Command): void {
  registerVote(program, "reject");
}
