import { compareCodePoints, escapePointerToken, isJsonObject, type JsonObject } from "../core/json.ts";
import type { DecisionRequest } from "../domain/request.ts";

export const REDACTION_PROFILES = ["default", "strict", "off"] as const;
export type RedactionProfile = (typeof REDACTION_PROFILES)[number];

/** Keys of `context.inline` that the `default` profile removes, compared case-insensitively. */
export const DEFAULT_REDACTED_KEYS: ReadonlySet<string> = new Set([
  "api_key",
  "authorization",
  "email",
  "messages",
  "password",
  "phone",
  "prompt",
  "raw",
  "ssn",
  "token",
  "access_token",
  "transcript",
]);

export interface Redaction {
  /** The request as persisted, with `context.redaction = {profile, fields_removed}`. */
  readonly request: DecisionRequest;
  readonly profile: RedactionProfile;
  readonly fieldsRemoved: readonly string[];
}

/** The profile a request asks for in `context.redaction.profile`, else the caller's default. */
export function requestedProfile(request: DecisionRequest, fallback: RedactionProfile): RedactionProfile {
  const redaction = request.context.redaction;
  const profile = isJsonObject(redaction) ? redaction.profile : undefined;
  return typeof profile === "string" && (REDACTION_PROFILES as readonly string[]).includes(profile)
    ? (profile as RedactionProfile)
    : fallback;
}

/**
 * Removes what must not be stored from `context.inline` and records what was removed, as Lumyn 1.3.6 does.
 * The input is not modified; untouched members are shared with the result.
 */
export function redactForPersistence(request: DecisionRequest, profile: RedactionProfile): Redaction {
  const context = request.context;
  const inline = context.inline;
  const removed: string[] = [];
  let keptInline: JsonObject | undefined;
  if (isJsonObject(inline)) {
    keptInline = {};
    for (const key of Object.keys(inline)) {
      const remove =
        profile === "strict" || (profile === "default" && DEFAULT_REDACTED_KEYS.has(key.toLowerCase()));
      if (remove) removed.push(key);
      else
        Object.defineProperty(keptInline, key, {
          value: inline[key],
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
  }
  const fieldsRemoved = removed
    .sort(compareCodePoints)
    .map((key) => `/context/inline/${escapePointerToken(key)}`);
  const persistedContext: JsonObject = {
    ...context,
    ...(keptInline !== undefined ? { inline: keptInline } : {}),
    redaction: { profile, fields_removed: fieldsRemoved },
  };
  return { request: { ...request, context: persistedContext } as DecisionRequest, profile, fieldsRemoved };
}
