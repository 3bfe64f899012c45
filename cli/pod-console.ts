/**
 * The console of a VM whose launcher Pod a real kubelet runs: `pods/exec` on the Pod's
 * `compute` container, running a tiny relay that joins the exec's stdin/stdout to QEMU's
 * serial socket inside the Pod.
 *
 * Why exec and not `nodes/<node>/proxy` (the process-runtime path): beside a real kubelet the
 * Node's proxy subresource reaches the kubelet's port, not the agent's, and the serial socket
 * lives in the Pod's own emptyDir anyway. `pods/exec` is authenticated and authorized by the
 * API server (RBAC: `create` on `pods/exec` in the VM's namespace; since Kubernetes 1.30 the
 * WebSocket GET needs `create` too), is served by every conformant cluster and kubelet, and
 * opens no port of ours. (KubeVirt serves `subresources.kubevirt.io` from virt-api, which
 * then dials virt-handler; that needs an aggregated API server, which virtops does not ship.)
 *
 * The wire: the API server's WebSocket exec (`v5.channel.k8s.io`, else `v4`): each message
 * is one channel byte (0 stdin, 1 stdout, 2 stderr, 3 status; v5: 255 = close a channel) and
 * the data.
 */
import { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { refusalMessage, type KubeRest } from './kube-rest.js';

/**
 * QEMU's serial socket inside the compute container: serialSocketPath(PATHS.share) (synth's
 * `--kubevirt-share-dir`); spelled out so the CLI loads no synth module (a unit test holds them equal).
 */
export const POD_SERIAL_SOCKET = '/var/run/kubevirt/sockets/serial0';

/**
 * The relay the compute container runs (its image has node; CommonJS under `node -e`). argv:
 * the serial socket, then optionally the serial log, whose last 16 KiB (from a line start)
 * are written first, so a console opened after boot shows what the guest printed (QEMU's
 * socket replays nothing). Ends when either side does; a connect error goes to stderr.
 */
export const POD_CONSOLE_RELAY = [
  "const fs=require('fs');const [sock,log]=process.argv.slice(1);",
  "try{if(log){const b=fs.readFileSync(log);let t=b.subarray(Math.max(0,b.length-16384));",
  "if(t.length<b.length){const i=t.indexOf(10);if(i>=0)t=t.subarray(i+1);}process.stdout.write(t);}}catch{}",
  "const s=require('net').connect(sock);",
  "s.on('connect',()=>{process.stdin.pipe(s);s.pipe(process.stdout);});",
  "s.on('error',(e)=>{process.stderr.write('serial console '+sock+': '+e.message+'\\n');process.exit(1);});",
  "s.on('close',()=>process.exit(0));",
  "process.stdin.on('end',()=>{s.end();setTimeout(()=>process.exit(0),200);});",
].join('');

/** QEMU's serial log of VMI namespace/name inside the compute container (launcherPaths' logDir, serialLogPath's name). */
export function podSerialLog(namespace: string, name: string): string {
  return `/var/run/kubevirt/logs/${namespace}_${name}-serial0.log`;
}

export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];

/** Pure: the exec subresource path (query as the API server takes it: one `command` per argv word). */
export function podExecPath(namespace: string, pod: string, container: string, command: string[]): string {
  const q = new URLSearchParams();
  q.set('container', container);
  q.set('stdin', 'true');
  q.set('stdout', 'true');
  q.set('stderr', 'true');
  for (const c of command) q.append('command', c);
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/exec?${q.toString()}`;
}

/** The argv of the relay for `socket` (and the serial log to replay first, if any). */
export function relayCommand(socket = POD_SERIAL_SOCKET, log?: string): string[] {
  return ['node', '-e', POD_CONSOLE_RELAY, socket, ...(log ? [log] : [])];
}

/** Pure: the message of a channel-3 status (a JSON metav1.Status); undefined for Success. */
export function execStatusError(text: string): string | undefined {
  try {
    const st = JSON.parse(text) as { status?: string; message?: string; reason?: string };
    if (st.status === 'Success') return undefined;
    return st.message ?? st.reason ?? text;
  } catch {
    return text.trim() || undefined;
  }
}

/** Pure: which launcher Pod runs under a real container runtime (the process-runtime agent reports no containerID). */
export function runsUnderKubelet(pod: { status?: { containerStatuses?: { name: string; containerID?: string }[] } }): boolean {
  const id = pod.status?.containerStatuses?.find((c) => c.name === 'compute')?.containerID;
  return typeof id === 'string' && /^[a-z0-9-]+:\/\//.test(id) && !id.startsWith('virtops-');
}

export class ExecRefused extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'ExecRefused';
  }
}

/**
 * Opens `command` in `container` of `namespace/pod` through the API server; resolves with a
 * Duplex of its stdin (writes) and stdout (reads) once the exec is up. Stderr and a failure
 * status become an error on the stream.
 */
export function podExec(kube: KubeRest, o: { namespace: string; pod: string; container: string; command: string[] }): Promise<Duplex> {
  const t = kube.target;
  const base = t.server.pathname.replace(/\/$/, '');
  const url = new URL(`${base}${podExecPath(o.namespace, o.pod, o.container, o.command)}`, t.server);
  url.protocol = t.server.protocol === 'https:' ? 'wss:' : 'ws:';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, EXEC_PROTOCOLS, { headers: { 'user-agent': 'virtops-cli', ...t.headers }, ...t.tls });
    let v5 = false;
    let stderr = '';
    let opened = false;
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (ws.readyState !== WebSocket.OPEN) return cb(new Error('the exec connection is closed'));
        ws.send(Buffer.concat([Buffer.from([0]), chunk]), cb);
      },
      final(cb) {
        // v5 can close stdin alone (the relay then ends); v4 cannot, so the connection goes.
        if (v5 && ws.readyState === WebSocket.OPEN) ws.send(Buffer.from([255, 0]), () => cb());
        else {
          ws.close();
          cb();
        }
      },
      destroy(err, cb) {
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
        cb(err);
      },
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => reject(new ExecRefused(res.statusCode ?? 0, `exec in Pod ${o.namespace}/${o.pod}: HTTP ${res.statusCode}: ${refusalMessage(body)}`)));
    });
    ws.on('open', () => {
      opened = true;
      v5 = ws.protocol === 'v5.channel.k8s.io';
      resolve(stream);
    });
    ws.on('message', (data: Buffer) => {
      const ch = data[0];
      const body = data.subarray(1);
      if (ch === 1) stream.push(body);
      else if (ch === 2) stderr += body.toString();
      else if (ch === 3) {
        const err = execStatusError(body.toString());
        if (err) stream.destroy(new Error(`${err}${stderr ? `: ${stderr.trim()}` : ''}`));
      }
    });
    ws.on('error', (err) => {
      if (!opened) reject(new Error(`cannot reach the Kubernetes API at ${t.server.origin}: ${err.message}`));
      else stream.destroy(err);
    });
    ws.on('close', () => {
      if (stderr && !stream.destroyed) stream.destroy(new Error(stderr.trim()));
      else stream.push(null);
    });
  });
}
