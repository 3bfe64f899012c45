/**
 * A small client for the launcher's command socket (used by the monitor, the node agent,
 * tests and the benchmark).
 */
import { request } from 'node:http';

export interface LauncherResponse<T = unknown> {
  status: number;
  body: T;
}

export function callLauncher<T = unknown>(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 600_000): Promise<LauncherResponse<T>> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath, method, path, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : undefined) as T });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text as unknown as T });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`launcher ${method} ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** Streams NDJSON lines from GET /v1/events until `signal` aborts. */
export async function* launcherEvents(socketPath: string, signal?: AbortSignal): AsyncIterable<Record<string, unknown>> {
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = request({ socketPath, method: 'GET', path: '/v1/events', ...(signal ? { signal } : {}) }, resolve);
    req.on('error', reject);
    req.end();
  });
  let buf = '';
  try {
    for await (const chunk of res) {
      buf += (chunk as Buffer).toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) yield JSON.parse(line) as Record<string, unknown>;
      }
    }
  } catch (err) {
    if (!signal?.aborted) throw err;
  }
}
