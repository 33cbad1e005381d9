/** A minimal GraphQL-over-HTTP client for the platform's own commands. */

export class GraphQLRequestError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
    this.name = 'GraphQLRequestError';
  }
}

export async function graphqlRequest<T>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  apiKey?: string,
): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey && { 'x-api-key': apiKey }) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json().catch(() => null) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] } | null;
  if (!body) throw new GraphQLRequestError(`HTTP ${response.status} without a GraphQL body`, undefined);
  if (body.errors?.length) {
    const [first] = body.errors;
    throw new GraphQLRequestError(`${first.extensions?.code ?? 'ERROR'}: ${first.message}`, first.extensions?.code);
  }
  return body.data as T;
}
