import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServiceMetrics } from "./metrics.ts";

/** The value of one sample line of the exposition text, or undefined when there is no such line. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("ServiceMetrics", () => {
  it("counts every decision and request exactly, by label values, across scrapes", async () => {
    const metrics = new ServiceMetrics();
    metrics.decision("DENY", "stored", ["A", "B"], 0.002);
    metrics.decision("DENY", "stored", ["A"], 0.002);
    metrics.decision("ALLOW", "duplicate", [], 0.002);
    metrics.request("POST", "/v1/decide", 200, 0.003);
    metrics.request("POST", "/v1/decide", 409, 0.003);
    metrics.request("POST", "/v1/decide", 200, 0.003);

    const first = await metrics.text();
    assert.equal(sample(first, 'lumyn_decisions_total{verdict="DENY",status="stored"}'), 2);
    assert.equal(sample(first, 'lumyn_decisions_total{verdict="ALLOW",status="duplicate"}'), 1);
    assert.equal(sample(first, 'lumyn_decision_reason_codes_total{reason_code="A"}'), 2);
    assert.equal(sample(first, 'lumyn_decision_reason_codes_total{reason_code="B"}'), 1);
    assert.equal(
      sample(first, 'lumyn_http_requests_total{method="POST",route="/v1/decide",status="200"}'),
      2,
    );
    assert.equal(
      sample(first, 'lumyn_http_requests_total{method="POST",route="/v1/decide",status="409"}'),
      1,
    );
    assert.equal(sample(first, "lumyn_decision_duration_seconds_count"), 3);

    // A scrape reads the counts; it neither resets them nor counts them twice.
    const counters = (text: string): string[] =>
      text
        .split("\n")
        .filter((line) => /^lumyn_(decisions|decision_reason_codes|http_requests)_total\{/.test(line));
    assert.equal(counters(first).length, 6);
    assert.deepEqual(counters(await metrics.text()), counters(first));
    metrics.decision("DENY", "stored", ["B"], 0.002);
    const second = await metrics.text();
    assert.equal(sample(second, 'lumyn_decisions_total{verdict="DENY",status="stored"}'), 3);
    assert.equal(sample(second, 'lumyn_decision_reason_codes_total{reason_code="B"}'), 2);
    assert.equal(sample(second, 'lumyn_decision_reason_codes_total{reason_code="A"}'), 2);
  });

  it("keeps label sets apart even when their values would run together", async () => {
    const metrics = new ServiceMetrics();
    metrics.request("GET", "/a", 200, 0.001);
    metrics.request("GET/", "a", 200, 0.001);
    const text = await metrics.text();
    assert.equal(sample(text, 'lumyn_http_requests_total{method="GET",route="/a",status="200"}'), 1);
    assert.equal(sample(text, 'lumyn_http_requests_total{method="GET/",route="a",status="200"}'), 1);
  });
});
