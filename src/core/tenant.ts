import type { JsonObject } from "./json.ts";

/** The tenant a record belongs to, for idempotency and for scoping memory. */
export function tenantOf(request: JsonObject): string {
  const tenant = request.tenant;
  if (tenant && typeof tenant === "object" && !Array.isArray(tenant)) {
    const id = (tenant as JsonObject).tenant_id;
    if (typeof id === "string" && id.length > 0) return id;
  }
  const subject = request.subject;
  if (subject && typeof subject === "object" && !Array.isArray(subject)) {
    const id = (subject as JsonObject).tenant_id;
    if (typeof id === "string" && id.length > 0) return id;
  }
  return GLOBAL_TENANT;
}

/** The tenant of requests that name none. */
export const GLOBAL_TENANT = "__global__";
