import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface ProbeOptions {
  /** PEM bundle to verify the server; omitted = do not verify (self-signed health ports). */
  readonly ca?: string;
  readonly token?: string;
  readonly timeoutMs?: number;
  /** Default GET. */
  readonly method?: string;
}

/**
 * GET over HTTP(S); resolves with status and body, or undefined when unreachable. No
 * connection pooling (`agent: false`): a probe must not keep the CLI's event loop alive.
 */
export function httpGet(url: string, o: ProbeOptions = {}): Promise<{ status: number; body: string } | undefined> {
  const request = url.startsWith('https://') ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: o.method ?? 'GET',
        agent: false,
        ...(url.startsWith('https://') ? { ca: o.ca, rejectUnauthorized: o.ca !== undefined } : {}),
        headers: o.token ? { authorization: `Bearer ${o.token}` } : {},
        timeout: o.timeoutMs ?? 2_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}
