/**
 * Who is on the other end of a unix socket (Linux SO_PEERCRED), for every socket virtops
 * serves locally (the launcher's command socket, `up.sock`, the pool's socket): besides the
 * 0600 mode, a peer whose uid is neither this process's nor root's is refused at accept, before
 * a byte of its request is read.
 *
 * Node has no API for SO_PEERCRED. `sockopt` (getsockopt on a socket's fd, N-API with
 * prebuilt Linux binaries) reads one int of the option, which for SO_PEERCRED is the first
 * field of `struct ucred`: the peer's pid as the kernel recorded it at connect(). The uid is
 * then read from /proc/<pid>/status (its effective uid). A peer that is gone by then, or a pid
 * the kernel cannot map into our pid namespace (0), is refused: unknown is not allowed.
 * Pure decision (`peerVerdict`), I/O at the edge (`peerOf`, `guardPeers`).
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import sockopt from 'sockopt';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

export interface Peer {
  pid: number;
  /** Effective uid, when /proc told it. */
  uid?: number;
}

export type PeerVerdict = { ok: true } | { ok: false; reason: string };

/** Allowed: this process's own uid, or root. Anything not known is refused. */
export function peerVerdict(peer: Peer | undefined, ownUid: number): PeerVerdict {
  if (!peer || peer.pid <= 0) return { ok: false, reason: 'the peer process is unknown (no SO_PEERCRED pid)' };
  if (peer.uid === undefined) return { ok: false, reason: `the peer process ${peer.pid} is gone or unreadable` };
  if (peer.uid === ownUid || peer.uid === 0) return { ok: true };
  return { ok: false, reason: `uid ${peer.uid} (pid ${peer.pid}) is not this server's uid ${ownUid} nor root` };
}

/** The effective uid in a /proc/<pid>/status text (`Uid: real effective saved fs`). */
export function effectiveUid(status: string): number | undefined {
  const m = /^Uid:\s+\d+\s+(\d+)/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

/** The connected peer of an accepted unix socket; undefined where the OS does not tell. */
export function peerOf(socket: Socket): Peer | undefined {
  let pid: number;
  try {
    pid = sockopt.getsockopt(socket, SOL_SOCKET, SO_PEERCRED) as number;
  } catch {
    return undefined;
  }
  let uid: number | undefined;
  try {
    uid = effectiveUid(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    // gone already
  }
  return { pid, ...(uid !== undefined ? { uid } : {}) };
}

/** Whether this OS can tell a unix socket's peer (Linux); elsewhere the 0600 mode stands alone. */
export const PEER_CHECK_SUPPORTED = process.platform === 'linux';

/**
 * Refuses, at accept, every connection to `server` (a unix socket) whose peer is not this
 * process's uid or root: the connection is destroyed before its request is read, and logged.
 */
export function guardPeers(server: Server, what: string, log: { warn: (obj: object, msg: string) => void }, ownUid = process.geteuid?.() ?? 0): void {
  if (!PEER_CHECK_SUPPORTED) return;
  server.prependListener('connection', (socket: Socket) => {
    const peer = peerOf(socket);
    const v = peerVerdict(peer, ownUid);
    if (v.ok) return;
    log.warn({ socket: what, peerPid: peer?.pid ?? null, peerUid: peer?.uid ?? null, reason: v.reason }, `refused a connection to ${what}: ${v.reason}`);
    socket.destroy();
  });
}
