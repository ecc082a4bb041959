import { userInfo } from "node:os";
import type { JsonObject } from "../index.ts";

/**
 * Who changes the registry from this CLI, as its history records it: `{by: "cli", principal: "os:<user>"}`,
 * the operating-system account that ran the command (`os:uid:<n>` where the account has no name). A
 * principal is `<kind>:<name>`; servers record a Redis document's as `publisher:<key id>`.
 */
export function cliSource(): JsonObject {
  return { by: "cli", principal: osPrincipal() };
}

/** The operating-system account that runs this command, as a principal: `os:<user>` (`os:uid:<n>`). */
export function osPrincipal(): string {
  return `os:${osUser()}`;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    // A container's user may have no entry in /etc/passwd.
    return `uid:${process.getuid?.() ?? "unknown"}`;
  }
}
