// A transport that sends `trackEvents` through the host app's own Apollo Client, so the
// events take the app's link chain (auth link, gateway URL, headers, retries it has) instead
// of a fetch of their own. Batching, clientEventId retries and the unload flush stay
// signals.js's: this only turns one batch into one `client.mutate()` and its outcome into the
// { status, payload } the tracker reads. Works with @apollo/client 3.8+ and 4.
import { type ApolloClient, gql } from "@apollo/client";
import { TRACK_MUTATION, type Transport, type TransportAnswer } from "./signals.js";

export interface ApolloTransportOptions {
  /** Add `Authorization: Bearer <getToken()>` (default true). false when the app's own auth link sets it. */
  sendToken?: boolean;
}

type GraphQLErrorLike = { message?: string; extensions?: Record<string, unknown> };

/** The GraphQL errors an Apollo error carries (v3 ApolloError.graphQLErrors, v4 CombinedGraphQLErrors.errors). */
function graphQLErrors(error: unknown): GraphQLErrorLike[] {
  const e = error as { graphQLErrors?: unknown; errors?: unknown } | null;
  const found = (e && (Array.isArray(e.graphQLErrors) ? e.graphQLErrors : Array.isArray(e.errors) ? e.errors : null)) || [];
  return found as GraphQLErrorLike[];
}

/** The HTTP status of a server error (v4 ServerError.statusCode, v3 networkError.statusCode). */
function statusCode(error: unknown): number | null {
  const e = error as { statusCode?: unknown; networkError?: { statusCode?: unknown } | null } | null;
  const code = e?.statusCode ?? e?.networkError?.statusCode;
  return typeof code === "number" ? code : null;
}

function answerForError(error: unknown): TransportAnswer {
  const errors = graphQLErrors(error);
  if (errors.length) return { status: 200, payload: { data: null, errors } };
  const status = statusCode(error);
  if (status !== null) return { status, payload: null };
  throw error; // no answer from the server: a network error, retried with the same ids
}

export function apolloTransport(client: Pick<ApolloClient, "mutate">, options: ApolloTransportOptions = {}): Transport {
  const mutation = gql(TRACK_MUTATION);
  const sendToken = options.sendToken ?? true;
  return async ({ variables, token, keepalive }) => {
    let result: { data?: unknown; errors?: unknown; error?: unknown };
    try {
      result = (await client.mutate({
        mutation,
        variables,
        fetchPolicy: "no-cache", // results are not app data: keep them out of the cache
        errorPolicy: "all",
        context: {
          headers: sendToken && token ? { authorization: `Bearer ${token}` } : {},
          fetchOptions: { keepalive }, // HttpLink passes these to fetch: survives an unload
        },
      } as Parameters<typeof client.mutate>[0])) as typeof result;
    } catch (error) {
      return answerForError(error);
    }
    const errors = Array.isArray(result.errors) ? (result.errors as GraphQLErrorLike[]) : [];
    if (!result.data && !errors.length && result.error) return answerForError(result.error);
    if (!errors.length && result.error) errors.push(...graphQLErrors(result.error));
    const data = (result.data ?? null) as NonNullable<TransportAnswer["payload"]>["data"];
    return { status: 200, payload: { data, errors } };
  };
}
