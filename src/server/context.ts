import type { Lumyn } from "../index.ts";
import type { ServiceMetrics } from "./metrics.ts";

/** What every route handler is given: the gateway it serves, its metrics and the service's settings. */
export interface RouteContext {
  readonly lumyn: Lumyn;
  readonly metrics: ServiceMetrics;
  readonly signingSecret: string | undefined;
  readonly bodyLimit: number;
  /** How long writes may wait without a commit before /readyz says the server is not ready, in ms. */
  readonly writeStallMs: number;
}
