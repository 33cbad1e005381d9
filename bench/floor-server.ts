/**
 * The floor of the serving benchmark: a bare node:http server that reads each request's body and answers with a
 * precomputed response of the same bytes the platform sends for that scenario. No parsing, no GraphQL, no model.
 *
 *   node --import tsx bench/floor-server.ts <bodies.json> <port>     (bodies.json: {"/path": "<response body>"})
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [bodiesFile, port] = process.argv.slice(2);
const bodies = new Map(Object.entries(JSON.parse(readFileSync(bodiesFile, 'utf8')) as Record<string, string>)
  .map(([route, body]) => [route, Buffer.from(body)]));
const headers = (body: Buffer) => ({ 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.end('ok');
    return;
  }
  const body = bodies.get(req.url ?? '');
  req.resume();
  req.on('end', () => {
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
