/**
 * A real HTTP server on this host serving one disk image (the test guest's qcow2) at
 * `/disk.qcow2`, for DataVolume imports; anything else is a 404. Counts the requests, so a
 * test can tell that a Succeeded DataVolume is never fetched again.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';

export interface DiskServer {
  url: string;
  /** sha256 of the file, hex. */
  sha256: string;
  /** Requests served so far (any path). */
  readonly requests: number;
  close(): Promise<void>;
}

export async function serveDisk(path: string): Promise<DiskServer> {
  const sha256 = createHash('sha256').update(await readFile(path)).digest('hex');
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    if (req.url !== '/disk.qcow2') return void res.writeHead(404).end('not here');
    void stat(path).then((st) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
      createReadStream(path).pipe(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/disk.qcow2`,
    sha256,
    get requests() {
      return requests;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
