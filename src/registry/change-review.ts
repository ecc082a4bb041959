/**
 * Four-eyes review of a tenant's registry. With `four_eyes` on, activating a version (from the CLI, or a
 * signed document from Redis) opens a change request that another principal must approve before the version
 * goes live; turning four-eyes off is such a change too. Requests, their approval (the `activated` or
 * `settings` event names the request and who asked) and rejections are registry events, so the audit log
 * covers who asked for what and who let it through.
 *
 * A rollback is not reviewed: it returns to the version active before, which went live through whatever
 * review applied then, and it is what an incident needs at once.
 */
import type { JsonObject } from "../core/json.ts";
import { fail, ok, type Result } from "../core/problem.ts";
import { sameIdentity } from "../domain/identity.ts";
import type { PolicyEvent } from "../domain/policy-registry.ts";
import type { Store } from "../store/store.ts";

/** What a change request asks for. */
export type RequestedChange =
  | { readonly kind: "activate"; readonly policyHash: string; readonly expectedActive: string | null }
  | { readonly kind: "four_eyes_off" };

/** A change request still open: neither approved nor rejected. */
export interface ChangeRequest {
  readonly seq: number;
  readonly tenantId: string;
  readonly change: RequestedChange;
  /** Who asked (`os:<user>` from the CLI, `publisher:<key id>` for a Redis document). */
  readonly principal: string;
  readonly createdAt: string;
}

/** What approving or rejecting a request did. */
export interface ReviewOutcome {
  readonly request: ChangeRequest;
  /** The event that closed the request. */
  readonly event: PolicyEvent;
}

/** Whether the tenant's activations need a second principal (its latest `settings` event says so). */
export function fourEyesRequired(events: readonly PolicyEvent[]): boolean {
  const settings = events.findLast((event) => event.type === "settings");
  return settings?.detail.four_eyes === true;
}

/** The tenant's open change requests, oldest first. */
export function openRequests(events: readonly PolicyEvent[]): ChangeRequest[] {
  const closed = new Set(
    events.map((event) => event.detail.request).filter((seq) => typeof seq === "number"),
  );
  return events.flatMap((event) => {
    if (event.type !== "change_requested" || closed.has(event.seq)) return [];
    const change: RequestedChange =
      event.detail.change === "four_eyes_off"
        ? { kind: "four_eyes_off" }
        : {
            kind: "activate",
            policyHash: event.policyHash as string,
            expectedActive:
              typeof event.detail.expected_active === "string" ? event.detail.expected_active : null,
          };
    return [
      {
        seq: event.seq,
        tenantId: event.tenantId,
        change,
        principal: principalOf(event.detail),
        createdAt: event.createdAt,
      },
    ];
  });
}

/** Opens a change request; `source` says who asks (its `principal`). */
export async function requestChange(
  store: Store,
  tenantId: string,
  change: RequestedChange,
  source: JsonObject,
): Promise<ChangeRequest> {
  const event = await store.policies.append({
    tenantId,
    type: "change_requested",
    ...(change.kind === "activate" ? { policyHash: change.policyHash } : {}),
    detail: {
      ...source,
      change: change.kind,
      ...(change.kind === "activate" ? { expected_active: change.expectedActive } : {}),
    },
  });
  if (!event) throw new Error("a change request is not a compare-and-set change: it cannot be refused");
  return { seq: event.seq, tenantId, change, principal: principalOf(source), createdAt: event.createdAt };
}

/**
 * Approves an open request and makes its change: another principal than the one who asked must approve
 * (compared as people read names), and an activation applies only over the version active when it was
 * requested, since that is what its reviewer saw it replace.
 */
export async function approveChange(
  store: Store,
  tenantId: string,
  requestSeq: number,
  source: JsonObject,
): Promise<Result<ReviewOutcome>> {
  const request = await openRequest(store, tenantId, requestSeq);
  if (!request.ok) return request;
  const { change, principal } = request.value;
  const approver = principalOf(source);
  if (sameIdentity(approver, principal))
    return fail("forbidden", [
      {
        code: "separation_of_duties",
        message: `change request #${requestSeq} of tenant '${tenantId}' was made by ${principal}; ${approver} reads as the same principal, and another must approve it`,
      },
    ]);
  const closing = { ...source, request: requestSeq, requested_by: principal };
  const event =
    change.kind === "activate"
      ? await store.policies.append({
          tenantId,
          type: "activated",
          policyHash: change.policyHash,
          expectedActive: change.expectedActive,
          detail: closing,
        })
      : await store.policies.append({ tenantId, type: "settings", detail: { ...closing, four_eyes: false } });
  if (!event)
    return fail("conflict", [
      {
        code: "registry_changed",
        message: `tenant '${tenantId}''s active policy is no longer ${change.kind === "activate" ? (change.expectedActive ?? "none") : "what it was"}, the version change request #${requestSeq} was reviewed against; nothing was activated`,
        expected: "the request rejected, and the activation asked for again",
      },
    ]);
  return ok({ request: request.value, event });
}

/** Turns down an open request (its requester may withdraw it this way too). */
export async function rejectChange(
  store: Store,
  tenantId: string,
  requestSeq: number,
  source: JsonObject,
  reason?: string,
): Promise<Result<ReviewOutcome>> {
  const request = await openRequest(store, tenantId, requestSeq);
  if (!request.ok) return request;
  const event = await store.policies.append({
    tenantId,
    type: "change_rejected",
    ...(request.value.change.kind === "activate" ? { policyHash: request.value.change.policyHash } : {}),
    detail: {
      ...source,
      request: requestSeq,
      requested_by: request.value.principal,
      ...(reason !== undefined ? { reason } : {}),
    },
  });
  if (!event) throw new Error("a rejection is not a compare-and-set change: it cannot be refused");
  return ok({ request: request.value, event });
}

/**
 * Turns four-eyes review on (at once) or off (which is itself a change another principal must approve).
 * `changed` is false when it already was as asked; `request` is the request that turning it off opened.
 */
export async function setFourEyes(
  store: Store,
  tenantId: string,
  on: boolean,
  source: JsonObject,
): Promise<{ readonly changed: boolean; readonly request?: ChangeRequest }> {
  const events = await store.policies.history(tenantId);
  if (fourEyesRequired(events) === on) return { changed: false };
  if (on) {
    await store.policies.append({ tenantId, type: "settings", detail: { ...source, four_eyes: true } });
    return { changed: true };
  }
  return { changed: false, request: await requestChange(store, tenantId, { kind: "four_eyes_off" }, source) };
}

async function openRequest(store: Store, tenantId: string, seq: number): Promise<Result<ChangeRequest>> {
  const open = openRequests(await store.policies.history(tenantId));
  const request = open.find((candidate) => candidate.seq === seq);
  if (request) return ok(request);
  return fail("not_found", [
    {
      code: "request_not_found",
      message: `tenant '${tenantId}' has no open change request #${seq}`,
      expected:
        open.length > 0 ? `one of ${open.map((r) => `#${r.seq}`).join(", ")}` : "no request: none is open",
    },
  ]);
}

function principalOf(detail: JsonObject): string {
  return typeof detail.principal === "string" ? detail.principal : `${String(detail.by ?? "unknown")}`;
}
