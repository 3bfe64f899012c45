/**
 * node:http adapter for the webhook verifier: reads the body with a size cap, answers with
 * the verdict, and calls `onPush` (typically `source.checkNow('webhook')`) for verified pushes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { DEFAULT_MAX_WEBHOOK_BODY, handleWebhook, type WebhookOptions, type WebhookResult } from './webhook.js';

export interface WebhookRouteOptions extends WebhookOptions {
  /** URL path served. Default `/hooks/git`. */
  path?: string;
  onPush: (result: WebhookResult) => void;
  logger?: Logger;
}

/** Returns a handler that serves `path` and returns false for any other request. */
export function createWebhookRoute(opts: WebhookRouteOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const path = opts.path ?? '/hooks/git';
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_WEBHOOK_BODY;
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) return false;
    if (req.method !== 'POST') {
      reply(res, 405, { reason: 'use POST' });
      return true;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > max) {
      reply(res, 413, { reason: `body of ${declared} bytes exceeds the limit of ${max}` });
      req.resume();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (chunk: Buffer) => {
      if (aborted) return;
      size += chunk.length;
      if (size > max) {
        aborted = true;
        reply(res, 413, { reason: `body exceeds the limit of ${max} bytes` });
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (aborted) return;
      const result = handleWebhook({ headers: req.headers, rawBody: Buffer.concat(chunks) }, opts);
      opts.logger?.info({ status: result.status, reason: result.reason, provider: result.provider, ref: result.ref, sha: result.sha }, 'webhook');
      reply(res, result.status, { accepted: result.accepted, reason: result.reason });
      if (result.accepted) opts.onPush(result);
    });
    req.on('error', () => reply(res, 400, { reason: 'request stream error' }));
    return true;
  };
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
