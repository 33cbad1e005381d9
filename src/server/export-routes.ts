/**
 * GET /export/items.jsonl and /export/interactions.csv: the platform's data in the shared layout, for the
 * retraining loop (src/cli/export-dataset.ts). With an API key configured, they need it like mutations do.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response, Router } from 'express';
import express from 'express';
import { interactionLines, itemLines } from '../datasets/export.js';
import type { Platform } from '../platform.js';

export function exportRoutes(platform: Platform): Router {
  const router = express.Router();
  const allowed = (req: Request, res: Response) => {
    const { apiKey } = platform.settings;
    if (apiKey && req.header('x-api-key') !== apiKey) {
      res.status(401).json({ errors: [{ message: 'exports need a valid x-api-key header', extensions: { code: 'UNAUTHENTICATED' } }] });
      return false;
    }
    return true;
  };
  const stream = (type: string, lines: () => AsyncGenerator<string>) => async (req: Request, res: Response) => {
    if (!allowed(req, res)) return;
    res.type(type);
    await pipeline(Readable.from(lines()), res);
  };
  router.get('/items.jsonl', stream('application/x-ndjson', () => itemLines(platform.db)));
  router.get('/interactions.csv', stream('text/csv', () => interactionLines(platform.db)));
  return router;
}
