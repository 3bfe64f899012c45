/**
 * A request the launcher refuses, with the HTTP status the command socket answers. Its own
 * module so the server (launcher/server/server.ts) can listen before the launcher's modules
 * are loaded (launcher/main.ts).
 */
import type { FieldError } from './vmi-check.js';

export class LauncherRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: { fieldErrors?: FieldError[]; reason?: string; result?: string } = {},
  ) {
    super(message);
  }
}
