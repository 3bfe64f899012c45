import { request } from 'node:https';

export interface ProbeOptions {
  /** PEM bundle to verify the server; omitted = do not verify (self-signed health ports). */
  readonly ca?: string;
  readonly token?: string;
  readonly timeoutMs?: number;
}

/** GET over HTTPS (or HTTP); resolves with status and body, or undefined when unreachable. */
export async function httpGet(url: string, o: ProbeOptions = {}): Promise<{ status: number; body: string } | undefined> {
  if (url.startsWith('http://')) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs ?? 2_000) });
      return { status: res.status, body: await res.text() };
    } catch {
      return undefined;
    }
  }
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: 'GET',
        ca: o.ca,
        rejectUnauthorized: o.ca !== undefined,
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
