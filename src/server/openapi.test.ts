import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import { STATS_DIMENSIONS } from "../api/decisions.ts";
import { ROUTES } from "../api/index.ts";
import { MAX_PAGE_SIZE } from "../api/schemas.ts";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { STATS_DIMENSIONS as STORE_STATS_DIMENSIONS } from "../store/decisions.ts";
import { MAX_PAGE_SIZE as STORE_MAX_PAGE_SIZE } from "../store/queries.ts";
import { call } from "../testing/http.ts";
import { type OpenApiDocument, resolved, schemaChecker } from "../testing/openapi.ts";
import { startTestServer, type TestServer } from "../testing/server.ts";

describe("HTTP service: the OpenAPI document", () => {
  let server: TestServer;
  let admin: string;
  let document: OpenApiDocument;
  before(async () => {
    server = await startTestServer();
    admin = await server.key({ scopes: ["admin"] });
    document = (await call(server, "GET", "/openapi.json", { key: admin })).body;
  });
  after(() => server.close());

  const operations = () =>
    Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
    );

  it("is a valid OpenAPI 3.1 document whose references all resolve", async () => {
    await SwaggerParser.validate(structuredClone(document) as never);
  });

  it("describes every route defined in src/api, by its name, with its access", () => {
    const described = operations().map(({ path, method, operation }) => [
      `${method.toUpperCase()} ${path}`,
      operation.operationId,
    ]);
    const defined = Object.entries(ROUTES).map(([name, route]) => [
      `${route.method} ${route.url.replace(/:(\w+)/g, "{$1}")}`,
      name,
    ]);
    assert.deepEqual(described.sort(), defined.sort());
    for (const { operation } of operations()) {
      const route = ROUTES[operation.operationId as keyof typeof ROUTES];
      if (route.access === "public") assert.deepEqual(operation.security, [], operation.operationId);
      else
        assert.ok(
          operation.description?.startsWith(
            route.access === "any" ? "Any valid key." : `Scope: \`${route.access}\`.`,
          ),
          operation.operationId,
        );
    }
  });

  it("gives an example of every parameter, request body and answer, each valid against its schema", () => {
    const check = schemaChecker(document);
    const valid = (where: string, schema: object, example: unknown) => {
      assert.notEqual(example, undefined, `${where}: no example`);
      assert.deepEqual(check(schema, example), [], `${where}: the example does not match its schema`);
    };
    for (const { path, method, operation } of operations()) {
      const at = `${method.toUpperCase()} ${path}`;
      for (const parameter of operation.parameters ?? [])
        valid(`${at} ${parameter.name}`, parameter.schema, parameter.example);
      for (const [type, media] of Object.entries(operation.requestBody?.content ?? {}))
        valid(
          `${at} body (${type})`,
          media.schema,
          media.example ?? resolved(document, media.schema).examples?.[0],
        );
      for (const [status, answer] of Object.entries(operation.responses)) {
        if (!status.startsWith("2")) continue;
        for (const [type, media] of Object.entries(answer.content ?? {})) {
          if (type === "application/zip") continue;
          valid(
            `${at} ${status} (${type})`,
            media.schema,
            media.example ?? resolved(document, media.schema).examples?.[0],
          );
        }
      }
    }
    for (const [name, schema] of Object.entries(document.components.schemas))
      for (const example of schema.examples ?? []) valid(`components.schemas.${name}`, schema, example);
  });

  it("shows as an example decision record the very record the server answers for the example request", async () => {
    const example = document.components.schemas.DecisionRecord?.examples?.[0] as Record<string, unknown>;
    const request = (document.components.schemas.DecisionRequest?.examples?.[0] ?? {}) as object;
    assert.deepEqual(request, EXAMPLE_REQUESTS["refund-small"]?.request);
    const answer = await call(server, "POST", "/v1/decide", { key: admin, body: request });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      { ...answer.body, decision_id: example.decision_id, created_at: example.created_at },
      example,
    );
  });

  it("has the store's page size and stats dimensions", () => {
    assert.equal(MAX_PAGE_SIZE, STORE_MAX_PAGE_SIZE);
    assert.deepEqual(STATS_DIMENSIONS, STORE_STATS_DIMENSIONS);
  });
});
