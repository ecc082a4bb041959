/**
 * The HTTP contract of `lumyn serve`: every route defined once (./route.ts says what a definition holds).
 * The server registers and validates with these definitions and describes them in `/openapi.json`; the
 * client (`lumyn/client`) calls through them. This folder imports only the core and the domain.
 */
import { APPROVAL_ROUTES } from "./approvals.ts";
import { DECISION_ROUTES } from "./decisions.ts";
import type { Route } from "./route.ts";
import { SERVICE_ROUTES } from "./service.ts";

export const ROUTES = { ...DECISION_ROUTES, ...APPROVAL_ROUTES, ...SERVICE_ROUTES } satisfies Record<
  string,
  Route
>;
export type Routes = typeof ROUTES;
export type RouteName = keyof Routes;
