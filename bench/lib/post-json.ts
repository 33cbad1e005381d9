/**
 * One JSON POST of the load generators (paced.ts, balancer.ts): the request on a given keep-alive agent and the
 * whole response body read back. Each caller adds what it measures (when the request was written, timeouts,
 * retries) on the request this returns, and writes the body with `request.end(body)`.
 */
import http from 'node:http';

export interface PostJson {
  agent: http.Agent;
  origin: URL;
  path: string;
  body: string;
  headers?: Record<string, string>;
  /** The response ended: its status (any) and its body. */
  answered: (status: number, text: string) => void;
  /** The response broke off before its end. */
  responseFailed: (error: Error) => void;
}

export function postJson(post: PostJson): http.ClientRequest {
  return http.request({
    agent: post.agent, host: post.origin.hostname, port: post.origin.port, path: post.path, method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(post.body), ...post.headers },
  }, (response) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => post.answered(response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
    response.on('error', post.responseFailed);
  });
}
