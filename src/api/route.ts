import Type, { type Static, type TObject, type TOptional, type TSchema } from "typebox";
import type { Access } from "./access.ts";

/** The groups of routes in the API description. */
export const TAGS = {
  decisions: "Deciding, reading, explaining, labelling and counting decisions",
  approvals: "Approvals that ESCALATEs opened, and the evaluator endpoint for Gantral",
  service: "Health, readiness, metrics, the active policy and this description",
} as const;

/** Headers an answer carries, each with its schema and what it says. */
export type AnswerHeaders = Readonly<Record<string, TSchema>>;

/** An answer that is not a JSON document of its own schema: a problem document, a zip, text, an event stream. */
export interface MediaAnswer {
  readonly description: string;
  readonly content: Readonly<Record<string, { readonly schema: TSchema }>>;
  readonly headers?: AnswerHeaders;
}

/**
 * One route of the HTTP API, the single place its shape is written: the server validates its parameters and
 * registers its handler with it, the OpenAPI document describes it, and the client calls it with it.
 */
export interface Route {
  readonly method: "GET" | "POST";
  /** The path, with parameters as `:name` (the document shows them as `{name}`). */
  readonly url: string;
  readonly access: Access;
  readonly tag: keyof typeof TAGS;
  readonly summary: string;
  /** What more there is to say than the summary (the required scope is added to it). */
  readonly description?: string;
  readonly params?: TObject;
  readonly querystring?: TObject;
  /**
   * The JSON body. The server reads it from the raw bytes itself (decision digests depend on how numbers are
   * written, signatures on the exact bytes), so this schema documents the body and types what is read.
   */
  readonly body?: TSchema;
  /** Every status the route answers, each with its schema (a JSON answer, `headers` beside it) or its media types. */
  readonly response: Readonly<Record<number, TSchema | MediaAnswer>>;
}

/** A query parameter validation fills in with its default when it is absent: optional to send, always read. */
export type TDefaulted<T extends TSchema> = TOptional<T> & { readonly "~defaulted": true };

export function withDefault<T extends TSchema>(schema: T, value: Static<T>): TDefaulted<T> {
  // Type.Optional's type is conditional, which TypeScript leaves unresolved for a generic schema.
  const optional: TSchema = Type.Optional(Object.assign(schema, { default: value }));
  return optional as TDefaulted<T>;
}

type Defaulted<Q extends TObject> = {
  [K in keyof Q["properties"] as Q["properties"][K] extends { "~defaulted": true } ? K : never]-?: Static<
    Q["properties"][K]
  >;
};

/** The path parameters a route is called with. */
export type ParamsOf<R extends Route> = R["params"] extends TObject ? Static<R["params"]> : undefined;
/** The query a route is called with: what the client sends. */
export type QueryOf<R extends Route> = R["querystring"] extends TObject
  ? Static<R["querystring"]>
  : undefined;
/** The query as the route's handler reads it, after validation filled in the defaults. */
export type ValidQueryOf<R extends Route> = R["querystring"] extends TObject
  ? Static<R["querystring"]> & Defaulted<R["querystring"]>
  : undefined;
/** The JSON body a route is called with. */
export type BodyOf<R extends Route> = R["body"] extends TSchema ? Static<R["body"]> : undefined;
/** The JSON a route answers with this status. */
export type AnswerOf<R extends Route, S extends keyof R["response"]> = R["response"][S] extends MediaAnswer
  ? never
  : R["response"][S] extends TSchema
    ? Static<R["response"][S]>
    : never;
/** What a route answers when it succeeds. */
export type SuccessOf<R extends Route> = AnswerOf<R, Extract<keyof R["response"], 200 | 201 | 202>>;
