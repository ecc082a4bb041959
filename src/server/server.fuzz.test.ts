import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { exampleRequest, startTestServer, type TestServer } from "../testing/server.ts";

/**
 * Malformed bodies and headers thrown at a real server: every answer must be a 4xx problem document, and the
 * server must keep serving afterwards.
 */

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/problem+json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json; charset=latin1",
  "",
];

/** Bodies that are never a valid decision request. */
const badBody = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.json().filter((text) => !text.startsWith("{")),
  fc.dictionary(fc.string(), fc.jsonValue()).map((value) => JSON.stringify(value)),
  fc.uint8Array({ maxLength: 256 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
  // A valid request with a required member removed, or replaced by a value that is not an object.
  fc
    .tuple(
      fc.constantFrom("schema_version", "subject", "action", "context"),
      fc.option(
        fc.jsonValue().filter((value) => typeof value !== "object" || value === null || Array.isArray(value)),
        { nil: undefined },
      ),
    )
    .map(([member, value]) => {
      const request = exampleRequest("refund-small", { request_id: "fuzz" });
      if (value === undefined) delete request[member];
      else request[member] = value;
      return JSON.stringify(request);
    }),
  // Deep nesting, huge numbers, duplicate keys, lone surrogates.
  fc.nat({ max: 200 }).map((depth) => `${"[".repeat(depth + 65)}${"]".repeat(depth + 65)}`),
  fc.constantFrom(
    '{"a":1e999}',
    '{"a":1,"a":2}',
    '"\\ud800"',
    "\u0000",
    "{",
    "[]",
    "null",
    "-",
    "1".repeat(5000),
  ),
);

const headerValue = fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,80}$/);

describe("HTTP service under malformed input", () => {
  let server: TestServer;
  let key: string;
  before(async () => {
    server = await startTestServer();
    key = await server.key({ scopes: ["admin"] });
  });
  after(() => server.close());

  const expectProblem = async (response: Response): Promise<void> => {
    const text = await response.text();
    assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}: ${text}`);
    assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json/, text);
    const problem = JSON.parse(text);
    assert.equal(problem.status, response.status);
    assert.equal(typeof problem.code, "string");
    assert.equal(problem.type, `urn:lumyn:problem:${problem.code}`);
  };

  it("answers malformed bodies and content types with 4xx problem documents", async () => {
    await fc.assert(
      fc.asyncProperty(
        badBody,
        fc.constantFrom(...CONTENT_TYPES),
        fc.constantFrom("/v1/decide", "/v1/decisions/01NOPE/labels"),
        async (body, contentType, path) => {
          const response = await fetch(`${server.url}${path}`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${key}`,
              ...(contentType ? { "content-type": contentType } : {}),
            },
            body,
          });
          await expectProblem(response);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("answers malformed headers, paths and queries with 4xx problem documents", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          authorization: fc.oneof(
            headerValue,
            headerValue.map((value) => `Bearer ${value}`),
          ),
          signature: headerValue,
        }),
        fc.constantFrom(
          "GET /v1/decisions",
          "GET /v1/stats",
          "POST /v1/decide",
          "GET /metrics",
          "GET /v1/decisions/x",
        ),
        fc.webQueryParameters(),
        async (headers, route, query) => {
          const [method, path] = route.split(" ") as [string, string];
          const response = await fetch(`${server.url}${path}?${query}`, {
            method,
            headers: {
              authorization: headers.authorization,
              "x-lumyn-signature": headers.signature,
              ...(method === "POST" ? { "content-type": "application/json" } : {}),
            },
            ...(method === "POST" ? { body: "{}" } : {}),
          });
          await expectProblem(response);
        },
      ),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(fc.webQueryParameters(), fc.webSegment(), async (query, segment) => {
        const list = await fetch(`${server.url}/v1/decisions?${query}&limit=${segment}x`, {
          headers: { authorization: `Bearer ${key}` },
        });
        await expectProblem(list);
      }),
      { numRuns: 100 },
    );
  });

  it("answers malformed HTTP (bad request lines, header syntax, content lengths) with 4xx problem documents", async () => {
    const { port } = new URL(server.url);
    const raw = (text: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(Number(port), "127.0.0.1");
        let answer = "";
        socket.on("data", (chunk) => {
          answer += String(chunk);
        });
        socket.on("end", () => resolve(answer));
        socket.on("close", () => resolve(answer));
        socket.on("error", reject);
        socket.end(text);
      });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc
            .string({ minLength: 1 })
            .filter((line) => line.trim() !== "")
            .map((line) => `${line}\r\n\r\n`),
          headerValue.map(
            (value) => `POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: ${value}x\r\n\r\n{}`,
          ),
          headerValue.map(
            (value) => `GET /healthz HTTP/1.1\r\nHost: x\r\nX-${value.replaceAll(":", "")}\r\n\r\n`,
          ),
        ),
        async (request) => {
          const answer = await raw(request);
          const [head = "", body = ""] = answer.split("\r\n\r\n");
          assert.match(head, /^HTTP\/1\.1 4\d\d /, answer);
          assert.match(head, /content-type: application\/problem\+json/i, answer);
          assert.match(JSON.parse(body).code, /^[a-z_]+$/);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("keeps serving afterwards", async () => {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const response = await fetch(`${server.url}/v1/decide`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(exampleRequest("refund-small", { request_id: "after-fuzz" })),
    });
    assert.equal(response.status, 200);
  });
});
