import { Counter, type CounterConfiguration, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import { POLICY_REJECTION_REASONS, type PolicyRejectionReason } from "../index.ts";

/** Latency buckets (seconds) around the service's targets: most answers take well under 10 ms. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * A counter tallied in a map keyed by its label values and handed to prom-client only when the registry is
 * read (prom-client's `collect`). prom-client hashes and validates the labels on every increment; a decision
 * over HTTP counts four to six times, and the tallies spare its event loop that work.
 */
class TalliedCounter<L extends string> {
  private readonly tallies = new Map<string, { readonly labels: Record<L, string>; pending: number }>();
  private readonly labelNames: readonly L[];

  constructor(config: CounterConfiguration<L> & { readonly labelNames: readonly L[] }) {
    this.labelNames = config.labelNames;
    const tallies = this.tallies;
    new Counter<L>({
      ...config,
      collect() {
        for (const tally of tallies.values()) {
          if (tally.pending === 0) continue;
          this.inc(tally.labels, tally.pending);
          tally.pending = 0;
        }
      },
    });
  }

  /** Counts one for these label values, given in the order of `labelNames`. */
  inc(...values: string[]): void {
    const key = values.length === 1 ? (values[0] as string) : values.join("\u0000");
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      const labels = {} as Record<L, string>;
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i] as string;
      });
      tally = { labels, pending: 0 };
      this.tallies.set(key, tally);
    }
    tally.pending++;
  }
}

/** The service's Prometheus metrics, in a registry of its own (several servers may share one process). */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly decisions = new TalliedCounter({
    name: "lumyn_decisions_total",
    help: "Decisions answered, by verdict and by whether they were stored now, before, or not at all",
    labelNames: ["verdict", "status"] as const,
    registers: [this.registry],
  });
  private readonly reasonCodes = new TalliedCounter({
    name: "lumyn_decision_reason_codes_total",
    help: "Reason codes of answered decisions (a decision with several counts once per code)",
    labelNames: ["reason_code"] as const,
    registers: [this.registry],
  });
  private readonly decisionSeconds = new Histogram({
    name: "lumyn_decision_duration_seconds",
    help: "Time from a parsed request to its durable decision",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly requests = new TalliedCounter({
    name: "lumyn_http_requests_total",
    help: "HTTP requests answered, by method, route and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  private readonly requestSeconds = new Histogram({
    name: "lumyn_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by method and route",
    labelNames: ["method", "route"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly storeErrors = new Counter({
    name: "lumyn_store_errors_total",
    help: "Store operations that failed (decisions then fail closed: ABSTAIN, STORAGE_UNAVAILABLE)",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });

  private readonly policySwitches = new Counter({
    name: "lumyn_policy_switches_total",
    help: "Times this server switched a tenant's policy to another registry version (tenant * is the default)",
    labelNames: ["tenant"] as const,
    registers: [this.registry],
  });
  // By reason, not tenant: whoever writes to Redis chooses the tenant keys, and would choose the series.
  private readonly policyRejections = new Counter({
    name: "lumyn_policy_rejected_total",
    help: "Policy documents written to Redis and not applied, by reason (the last good policy stayed active)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "lumyn_" });
    // Every reason is a series from the start, so that an alert on its rate sees the first rejection.
    for (const reason of POLICY_REJECTION_REASONS) this.policyRejections.inc({ reason }, 0);
  }

  decision(verdict: string, status: string, reasonCodes: readonly string[], seconds: number): void {
    this.decisions.inc(verdict, status);
    for (const reasonCode of reasonCodes) this.reasonCodes.inc(reasonCode);
    this.decisionSeconds.observe(seconds);
  }

  request(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc(method, route, String(status));
    this.requestSeconds.observe({ method, route }, seconds);
  }

  policySwitched(tenant: string): void {
    this.policySwitches.inc({ tenant });
  }

  policyRejected(reason: PolicyRejectionReason): void {
    this.policyRejections.inc({ reason });
  }

  storeError(operation: string): void {
    this.storeErrors.inc({ operation });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
