/** JSON log lines on stderr (stdout stays free for command output). */
// A static import (this module itself is loaded lazily): esbuild's bundle cannot hand a
// dynamically imported CommonJS module's named exports over, only its default.
import { pino, type Logger } from 'pino';

export async function createLogger(name: string, bindings: Record<string, string>): Promise<Logger> {
  return pino({ name, base: { pid: process.pid, ...bindings }, level: process.env['VIRTOPS_LOG_LEVEL'] ?? 'info' }, pino.destination({ fd: 2, sync: true }));
}
