/** JSON log lines on stderr (stdout stays free for command output). */
import type { Logger } from 'pino';

export async function createLogger(name: string, bindings: Record<string, string>): Promise<Logger> {
  const { pino } = await import('pino');
  return pino({ name, base: { pid: process.pid, ...bindings }, level: process.env['VIRTOPS_LOG_LEVEL'] ?? 'info' }, pino.destination({ fd: 2, sync: true }));
}
