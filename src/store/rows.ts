/**
 * What the stores share: rows as the writers take them, stored rows back into values, and how a failure is
 * reported. Every backend keeps the same tables (src/store/sqlite/schema.ts, src/store/postgres/schema.ts),
 * so a stored row reads the same from either.
 */

import { sha256 } from "../core/digest.ts";
import { newDecisionId, timestamp } from "../core/ids.ts";
import { canonicalJson, type JsonObject } from "../core/json.ts";
import { parseJson } from "../core/parse-json.ts";
import { StorageError } from "../core/problem.ts";
import { type ApiKey, defaultPrincipal } from "../domain/api-key.ts";
import { type Approval, approvalAgainstLog, type LoggedApproval } from "../domain/approval.ts";
import {
  type ChainCheckpoint,
  type ChainedPolicy,
  type ChainedPolicyEvent,
  type ChainedRow,
  type ChainKind,
  type ChainLink,
  type ChainPosition,
  chainEntry,
  GENESIS_HASH,
  type Inconsistency,
} from "../domain/chain.ts";
import type { DecisionEvent, NewDecisionEvent, SequencedEvent } from "../domain/decision-event.ts";
import { type DecisionRecord, type RecordKeys, recordKeys } from "../domain/decision-record.ts";
import { type Label, type MemoryCase, memoryCaseDisagreement } from "../domain/memory-case.ts";
import { type FrontierState, MerkleFrontier } from "../domain/merkle.ts";
import {
  changesActivePolicy,
  type NewPolicyEvent,
  type PolicyEvent,
  type PolicyEventType,
  type PolicySnapshot,
} from "../domain/policy-registry.ts";
import type { DeliveryAttempt, Webhook, WebhookProgress } from "../domain/webhook.ts";
import type { StoredDecisionPage } from "./decisions.ts";
import type { LabelWrite } from "./memory-cases.ts";

/** A decision as the writer stores it: plain data, so that it can cross to a worker thread. */
export interface DecisionRow extends RecordKeys {
  /** The record's canonical JSON. */
  readonly json: string;
  /** The approval this decision opens, stored with it. */
  readonly approval?: ApprovalRow;
}

/** An approval as the writer stores it, with the events of the change that made this version. */
export interface ApprovalRow {
  readonly approvalId: string;
  readonly decisionId: string;
  readonly tenantId: string;
  readonly state: string;
  readonly version: number;
  readonly deadline: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly json: string;
  readonly events: readonly EventRow[];
}

export interface EventRow {
  readonly eventId: string;
  readonly decisionId: string;
  readonly type: string;
  readonly createdAt: string;
  readonly dataJson: string;
}

/** A label as the writers store it: its event, and the decision's memory case. */
export interface LabelRow {
  readonly event: EventRow;
  readonly tenantId: string;
  readonly actionType: string;
  readonly label: Label;
  readonly summary: string;
  readonly severity: number | null;
  readonly projection: string;
  readonly fingerprint: Uint8Array;
}

/** An API key as the writers store it (scopes and roles as JSON). */
export interface ApiKeyRow {
  readonly keyId: string;
  readonly keyHash: string;
  readonly name: string;
  readonly principal: string;
  readonly scopesJson: string;
  readonly tenantId: string | null;
  readonly rolesJson: string;
  readonly rateLimitPerSecond: number | null;
  readonly createdAt: string;
}

/** A delivery attempt and the webhook's progress after it, written together. */
export interface DeliveryRow {
  readonly webhookId: string;
  readonly eventId: string;
  readonly attempt: number;
  readonly outcome: string;
  readonly httpStatus: number | null;
  readonly error: string | null;
  readonly at: string;
  readonly cursorSeq: number;
  readonly attempts: number;
  readonly nextAttemptAt: string | null;
}

/** A registry event as the writers store it, with the tenant's active version after it. */
export interface PolicyEventRow {
  readonly tenantId: string;
  readonly type: PolicyEventType;
  readonly policyHash: string | null;
  readonly activeHash: string | null;
  readonly detailJson: string;
  readonly createdAt: string;
}

/** What a failed store operation throws: what it was doing, and why (a StorageError passes through). */
export function storageError(action: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const detail = error instanceof Error ? error.message || String(error) : String(error);
  return new StorageError(`could not ${action}: ${detail}`, { cause: error });
}

export function parseStored(text: string): JsonObject {
  const parsed = parseJson(text, { maxBytes: Number.POSITIVE_INFINITY, maxDepth: 1_000 });
  if (!parsed.ok) throw new StorageError(`stored JSON is not valid: ${parsed.problems[0]?.message}`);
  return parsed.value as JsonObject;
}

/**
 * A page from the rows of a listing query that asked for one row more than the page holds: when that row is
 * there, the page's last decision is the cursor of the next.
 */
export function storedDecisionPage(
  rows: readonly Record<string, unknown>[],
  limit: number,
): StoredDecisionPage {
  const decisions = rows
    .slice(0, limit)
    .map((row) => ({ decisionId: String(row.decision_id), json: String(row.record_json) }));
  const last = decisions.at(-1);
  return rows.length > limit && last ? { decisions, nextCursor: last.decisionId } : { decisions };
}

export function decisionRow(record: DecisionRecord, json: string): DecisionRow {
  return { ...recordKeys(record), json };
}

export function eventRow(event: NewDecisionEvent): EventRow {
  return {
    eventId: newDecisionId(),
    decisionId: event.decisionId,
    type: event.type,
    createdAt: event.createdAt ?? timestamp(new Date()),
    dataJson: canonicalJson(event.data),
  };
}

export function storedEvent(row: EventRow): DecisionEvent {
  return {
    eventId: row.eventId,
    decisionId: row.decisionId,
    type: row.type,
    createdAt: row.createdAt,
    data: parseStored(row.dataJson),
  };
}

export function approvalRow(approval: Approval, events: readonly NewDecisionEvent[]): ApprovalRow {
  const rows = events.map(eventRow);
  return {
    approvalId: approval.approval_id,
    decisionId: approval.decision_id,
    tenantId: approval.tenant_id,
    state: approval.state,
    version: approval.version,
    deadline: approval.deadline,
    createdAt: approval.created_at,
    updatedAt: rows.at(-1)?.createdAt ?? timestamp(new Date()),
    json: canonicalJson(approval as unknown as JsonObject),
    events: rows,
  };
}

export const API_KEY_COLUMNS =
  "key_id, key_hash, name, principal, scopes_json, tenant_id, roles_json, rate_limit_per_second, created_at, revoked_at";

export function apiKeyOf(row: Record<string, unknown>): ApiKey {
  const name = String(row.name);
  return {
    keyId: String(row.key_id),
    keyHash: String(row.key_hash),
    name,
    principal: row.principal !== null ? String(row.principal) : defaultPrincipal(name, String(row.key_id)),
    scopes: JSON.parse(String(row.scopes_json)) as string[],
    ...(row.tenant_id !== null ? { tenantId: String(row.tenant_id) } : {}),
    roles: JSON.parse(String(row.roles_json)) as string[],
    ...(row.rate_limit_per_second !== null ? { rateLimitPerSecond: Number(row.rate_limit_per_second) } : {}),
    createdAt: String(row.created_at),
    ...(row.revoked_at !== null ? { revokedAt: String(row.revoked_at) } : {}),
  };
}

/** A labelled case from a `memory_cases` row (the fingerprint is a view on the row's bytes). */
export function memoryCaseOf(row: Record<string, unknown>): MemoryCase {
  const bytes = row.fingerprint as Uint8Array;
  return {
    decisionId: String(row.decision_id),
    tenantId: String(row.tenant_id),
    actionType: String(row.action_type),
    label: row.label as Label,
    vector: new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  };
}

export const WEBHOOK_COLUMNS =
  "webhook_id, url, secret, name, created_at, cursor_seq, attempts, next_attempt_at";

export function webhookOf(row: Record<string, unknown>): Webhook {
  return {
    webhookId: String(row.webhook_id),
    url: String(row.url),
    secret: String(row.secret),
    name: String(row.name),
    createdAt: String(row.created_at),
    cursorSeq: Number(row.cursor_seq),
    attempts: Number(row.attempts),
    ...(row.next_attempt_at !== null ? { nextAttemptAt: String(row.next_attempt_at) } : {}),
  };
}

export const DELIVERY_COLUMNS = "webhook_id, event_id, attempt, outcome, http_status, error, at";

export function deliveryOf(row: Record<string, unknown>): DeliveryAttempt {
  return {
    webhookId: String(row.webhook_id),
    eventId: String(row.event_id),
    attempt: Number(row.attempt),
    outcome: String(row.outcome) as DeliveryAttempt["outcome"],
    ...(row.http_status !== null ? { httpStatus: Number(row.http_status) } : {}),
    ...(row.error !== null ? { error: String(row.error) } : {}),
    at: String(row.at),
  };
}

/** An event from a `decision_events` row. */
export function eventOf(row: Record<string, unknown>): DecisionEvent {
  return {
    eventId: String(row.event_id),
    decisionId: String(row.decision_id),
    type: String(row.type),
    createdAt: String(row.created_at),
    data: parseStored(String(row.data_json)),
  };
}

export function approvalOf(json: unknown): Approval {
  return parseStored(String(json)) as unknown as Approval;
}

export const CHECKPOINT_COLUMNS = "seq, head_hash, tree_root, key_id, signature, signed_at";

export function checkpointOf(row: Record<string, unknown>): ChainCheckpoint {
  return {
    seq: Number(row.seq),
    headHash: String(row.head_hash),
    ...(row.tree_root !== null && row.tree_root !== undefined ? { treeRoot: String(row.tree_root) } : {}),
    keyId: String(row.key_id),
    signature: String(row.signature),
    signedAt: String(row.signed_at),
  };
}

/**
 * A chain link from its chain row and the row it names as stored now (undefined when that row is gone): the
 * entry's bytes are rebuilt from what is stored, so an edited row no longer hashes to the chain.
 */
export function chainLink(
  seq: number,
  kind: ChainKind,
  refId: string,
  hash: string,
  row: ChainedRow | undefined,
): ChainLink {
  return { seq, kind, refId, hash, entry: row?.kind === kind ? chainEntry(seq, row) : undefined };
}

/** An event with its place in the log, from a `decision_events` row. */
export function sequencedEventOf(row: Record<string, unknown>): SequencedEvent {
  return { seq: Number(row.seq), event: eventOf(row) };
}

export function snapshotOf(row: Record<string, unknown>): PolicySnapshot {
  return {
    policyHash: String(row.policy_hash),
    policyId: String(row.policy_id),
    policyVersion: String(row.policy_version),
    text: String(row.policy_text),
  };
}

export function policyEventOf(row: Record<string, unknown>): PolicyEvent {
  return {
    seq: Number(row.seq),
    tenantId: String(row.tenant_id),
    type: String(row.type) as PolicyEventType,
    ...(row.policy_hash !== null ? { policyHash: String(row.policy_hash) } : {}),
    detail: parseStored(String(row.detail_json)),
    createdAt: String(row.created_at),
  };
}

/** The label's event (it gets its id and time here) and the decision's memory case, as one row. */
export function labelRow(label: LabelWrite): LabelRow {
  const fingerprint = new Uint8Array(
    label.fingerprint.buffer,
    label.fingerprint.byteOffset,
    label.fingerprint.byteLength,
  );
  // The case memory keeps is derived from this event: what it records of the fingerprint holds the case to it.
  const data: JsonObject = {
    label: label.label,
    ...(label.summary !== undefined ? { summary: label.summary } : {}),
    ...(label.severity !== undefined ? { severity: label.severity } : {}),
    projection: label.projection,
    fingerprint_sha256: sha256(fingerprint),
  };
  return {
    event: {
      eventId: newDecisionId(),
      decisionId: label.decisionId,
      type: "label",
      createdAt: label.createdAt ?? timestamp(new Date()),
      dataJson: canonicalJson(data),
    },
    tenantId: label.tenantId,
    actionType: label.actionType,
    label: label.label,
    summary: label.summary ?? "",
    severity: label.severity ?? null,
    projection: label.projection,
    fingerprint,
  };
}

export function apiKeyRow(key: ApiKey): ApiKeyRow {
  return {
    keyId: key.keyId,
    keyHash: key.keyHash,
    name: key.name,
    principal: key.principal,
    scopesJson: JSON.stringify(key.scopes),
    tenantId: key.tenantId ?? null,
    rolesJson: JSON.stringify(key.roles),
    rateLimitPerSecond: key.rateLimitPerSecond ?? null,
    createdAt: key.createdAt,
  };
}

export function deliveryRow(attempt: DeliveryAttempt, progress: WebhookProgress): DeliveryRow {
  return {
    webhookId: attempt.webhookId,
    eventId: attempt.eventId,
    attempt: attempt.attempt,
    outcome: attempt.outcome,
    httpStatus: attempt.httpStatus ?? null,
    error: attempt.error ?? null,
    at: attempt.at,
    cursorSeq: progress.cursorSeq,
    attempts: progress.attempts,
    nextAttemptAt: progress.nextAttemptAt ?? null,
  };
}

/**
 * The registry's compare-and-set, the same on every backend: given the tenant's active version read in the
 * writer's transaction, the row to append, or undefined when an activation or rollback was computed from
 * another active version than the one there now (nothing is then written).
 */
export function policyEventRow(event: NewPolicyEvent, active: string | null): PolicyEventRow | undefined {
  const changesActive = changesActivePolicy(event.type);
  if (changesActive && active !== (event.expectedActive ?? null)) return undefined;
  return {
    tenantId: event.tenantId,
    type: event.type,
    policyHash: event.policyHash ?? null,
    activeHash: changesActive ? (event.policyHash ?? null) : active,
    detailJson: canonicalJson(event.detail),
    createdAt: event.createdAt ?? timestamp(new Date()),
  };
}

/** The event a registry row became, at its place in the history. */
export function appendedPolicyEvent(row: PolicyEventRow, seq: number, detail: JsonObject): PolicyEvent {
  return {
    seq,
    tenantId: row.tenantId,
    type: row.type,
    ...(row.policyHash !== null ? { policyHash: row.policyHash } : {}),
    detail,
    createdAt: row.createdAt,
  };
}

/**
 * The Merkle tree of the log as the last checkpoint left it, to grow from there; an empty tree when there is
 * no checkpoint yet, or only checkpoints made before the tree (the next one then reads the log from entry 1).
 */
export function frontierOf(json: unknown): MerkleFrontier {
  return typeof json === "string"
    ? new MerkleFrontier(JSON.parse(json) as FrontierState)
    : new MerkleFrontier();
}

/** A `policy_snapshots` row as the chain covers it. */
export function chainedPolicyOf(row: Record<string, unknown>): ChainedPolicy {
  return {
    policyHash: String(row.policy_hash),
    policyId: String(row.policy_id),
    policyVersion: String(row.policy_version),
    text: String(row.policy_text),
    createdAt: String(row.created_at),
  };
}

/** A `policy_events` row as the chain covers it. */
export function chainedPolicyEventOf(row: Record<string, unknown>): ChainedPolicyEvent {
  return {
    seq: Number(row.seq),
    tenantId: String(row.tenant_id),
    type: String(row.type),
    policyHash: row.policy_hash === null || row.policy_hash === undefined ? null : String(row.policy_hash),
    activeHash: row.active_hash === null || row.active_hash === undefined ? null : String(row.active_hash),
    detailJson: String(row.detail_json),
    createdAt: String(row.created_at),
  };
}

/**
 * An approval row against its own JSON (the columns lists and filters read) and against its log's latest
 * records of it; undefined when it holds.
 */
export function approvalInconsistency(row: Record<string, unknown>): Inconsistency | undefined {
  const id = String(row.approval_id);
  const inconsistent = (message: string): Inconsistency => ({ kind: "approval", id, message });
  let approval: Approval;
  try {
    approval = approvalOf(row.approval_json);
  } catch {
    return inconsistent(`approval ${id}'s stored JSON is not readable`);
  }
  const columns: [string, unknown, unknown][] = [
    ["approval_id", id, approval.approval_id],
    ["decision_id", String(row.decision_id), approval.decision_id],
    ["tenant_id", String(row.tenant_id), approval.tenant_id],
    ["state", String(row.state), approval.state],
    ["version", Number(row.version), approval.version],
    ["deadline", String(row.deadline), approval.deadline],
  ];
  const column = columns.find(([, stored, inJson]) => stored !== inJson);
  if (column) return inconsistent(`approval ${id}: its ${column[0]} column differs from its stored JSON`);
  const logged: LoggedApproval = {
    ...(typeof row.version_data === "string" ? { version: loggedVersion(row.version_data) } : {}),
    ...(typeof row.transition_to === "string" ? { lastTransitionTo: row.transition_to } : {}),
  };
  const check = approvalAgainstLog(approval, logged);
  return check.holds ? undefined : inconsistent(check.why);
}

function loggedVersion(dataJson: string): NonNullable<LoggedApproval["version"]> {
  const data = parseStored(dataJson);
  return { version: Number(data.version), state: String(data.state), digest: String(data.approval_digest) };
}

/** A `memory_cases` row (with its decision's columns and its latest label event) against the log. */
export function memoryCaseInconsistency(row: Record<string, unknown>): Inconsistency | undefined {
  const fingerprint = row.fingerprint as Uint8Array;
  const message = memoryCaseDisagreement({
    decisionId: String(row.decision_id),
    tenantId: String(row.tenant_id),
    actionType: String(row.action_type),
    label: String(row.label),
    summary: String(row.summary),
    severity: row.severity === null ? null : Number(row.severity),
    projection: String(row.projection),
    fingerprintSha256: sha256(fingerprint),
    labelledAt: String(row.labelled_at),
    ...(row.decision_tenant_id !== null
      ? {
          decision: {
            tenantId: String(row.decision_tenant_id),
            actionType: String(row.decision_action_type),
          },
        }
      : {}),
    ...(typeof row.event_data === "string"
      ? { labelEvent: { data: parseStored(row.event_data), createdAt: String(row.event_created_at) } }
      : {}),
  });
  return message === undefined ? undefined : { kind: "memory_case", id: String(row.decision_id), message };
}

/** An entry's position from a chain row and the hash of the row before it (the genesis hash before the first). */
export function chainPosition(row: Record<string, unknown>): ChainPosition {
  return {
    seq: Number(row.seq),
    hash: String(row.hash),
    previousHash: row.previous === null || row.previous === undefined ? GENESIS_HASH : String(row.previous),
  };
}
