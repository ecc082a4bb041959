import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Access } from "../api/access.ts";
import { ROUTES, type RouteName, type Routes } from "../api/index.ts";
import type { ParamsOf, Route, ValidQueryOf } from "../api/route.ts";

/** A request to a route, typed by its definition: its path parameters, and its query after validation. */
export type RouteRequest<N extends RouteName> = FastifyRequest<{
  Params: ParamsOf<Routes[N]>;
  Querystring: ValidQueryOf<Routes[N]>;
}>;

export type RouteHandler<N extends RouteName> = (
  request: RouteRequest<N>,
  reply: FastifyReply,
) => Promise<FastifyReply>;

function accessLine(access: Access): string | undefined {
  if (access === "public") return undefined;
  return access === "any" ? "Any valid key." : `Scope: \`${access}\`.`;
}

/**
 * Registers the handler of a route with its definition: Fastify validates its path parameters and query
 * with it, the auth hook reads its access, and @fastify/swagger describes it in the OpenAPI document.
 */
export function serve<N extends RouteName>(app: FastifyInstance, name: N, handler: RouteHandler<N>): void {
  const route: Route = ROUTES[name];
  const description = [accessLine(route.access), route.description].filter((line) => line !== undefined);
  app.route<{ Params: ParamsOf<Routes[N]>; Querystring: ValidQueryOf<Routes[N]> }>({
    method: route.method,
    url: route.url,
    config: { access: route.access },
    schema: {
      operationId: name,
      tags: [route.tag],
      summary: route.summary,
      ...(description.length > 0 ? { description: description.join(" ") } : {}),
      ...(route.access === "public" ? { security: [] } : {}),
      ...(route.params ? { params: route.params } : {}),
      ...(route.querystring ? { querystring: route.querystring } : {}),
      ...(route.body ? { body: route.body } : {}),
      response: { ...route.response },
    },
    handler,
  });
}

/** Every defined route the server has no handler for (none, once every route module is registered). */
export function unservedRoutes(app: FastifyInstance): RouteName[] {
  return (Object.keys(ROUTES) as RouteName[]).filter(
    (name) => !app.hasRoute({ method: ROUTES[name].method, url: ROUTES[name].url }),
  );
}
