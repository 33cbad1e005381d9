/**
 * The floor of the serving benchmark: a bare node:http server that reads each request's body and answers with the
 * precomputed response the platform sent to that body. No parsing, no GraphQL, no model.
 *
 *   node --import tsx bench/floor-server.ts <bodies.json> <port>
 *   (bodies.json: {"/path": {"<request body>": "<response body>", ...}, ...})
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [bodiesFile, port] = process.argv.slice(2);
const answers = new Map(Object.entries(JSON.parse(readFileSync(bodiesFile, 'utf8')) as Record<string, Record<string, string>>)
  .map(([route, byRequest]) => [route, new Map(Object.entries(byRequest).map(([request, body]) => [request, Buffer.from(body)]))]));
const headers = (body: Buffer) => ({ 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.end('ok');
    return;
  }
  const route = answers.get(req.url ?? '');
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = route?.get(Buffer.concat(chunks).toString('utf8'));
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, headers(body));
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
