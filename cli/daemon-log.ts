/**
 * The JSON log of a long-running command (`up`, `controller`, `agent` on stdout; `source
 * watch` on stderr, its stdout carries the events).
 * Written synchronously, as the launcher's is: pino's default stream writes in the
 * background, so the lines logged just before a kill, a crash or process.exit (the
 * "stopping" and "stopped" lines of a SIGTERM) could be lost with its buffer.
 */
// Static: this module is itself loaded lazily (see launcher/logger.ts for why not dynamic).
import { pino, type Logger } from 'pino';

export function daemonLogger(name: string, fd: 1 | 2 = 1): Logger {
  return pino({ name, level: process.env['VIRTOPS_LOG_LEVEL'] ?? 'info' }, pino.destination({ fd, sync: true }));
}
