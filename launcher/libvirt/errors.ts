/**
 * Typed libvirt errors. The N-API binding only carries a message (code is always -1), so
 * the class is chosen from libvirt's own message text; every error names the operation
 * and the domain so a log line alone says what failed.
 */

export type LibvirtOperation =
  | 'connect' | 'define' | 'start' | 'shutdown' | 'destroy' | 'suspend' | 'resume'
  | 'undefine' | 'info' | 'getXML' | 'list' | 'lookup' | 'events';

export class LibvirtError extends Error {
  override name = 'LibvirtError';
  constructor(
    readonly operation: LibvirtOperation,
    readonly domain: string | undefined,
    readonly libvirtMessage: string,
    readonly uri?: string,
  ) {
    super(`libvirt ${operation}${domain ? ` of domain '${domain}'` : ''} failed: ${libvirtMessage}`);
  }
}

export class DomainNotFoundError extends LibvirtError {
  override name = 'DomainNotFoundError';
  constructor(operation: LibvirtOperation, domain: string, libvirtMessage = 'Domain not found', uri?: string) {
    super(operation, domain, libvirtMessage, uri);
    this.message = `libvirt ${operation}: domain '${domain}' does not exist`;
  }
}

/** libvirtd cannot be reached (not running, restarted, wrong URI or socket path). */
export class LibvirtUnavailableError extends LibvirtError {
  override name = 'LibvirtUnavailableError';
  constructor(operation: LibvirtOperation, domain: string | undefined, libvirtMessage: string, uri?: string) {
    super(operation, domain, libvirtMessage, uri);
    this.message =
      `libvirt is unavailable${uri ? ` at ${uri}` : ''} (${operation}${domain ? ` of '${domain}'` : ''}): ${libvirtMessage}. ` +
      'Check that libvirtd is running (bash scripts/setup-host.sh) and that --libvirt-uri is right.';
  }
}

// Messages libvirt uses when the daemon is gone or the connection broke.
const UNAVAILABLE = [
  /Failed to connect socket/i,
  /client socket is closed/i,
  /Cannot (recv|write) data/i,
  /End of file while reading data/i,
  /invalid connection pointer/i,
  /Broken pipe/i,
  /Connection reset by peer/i,
  /connection (is )?closed/i,
  /no connection driver available/i,
  /unable to connect to server/i,
  /Cannot connect to/i,
];
const NOT_FOUND = [/Domain not found/i, /no domain with matching/i];

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** True when a message means the connection to libvirtd is unusable. */
export function isConnectionLoss(message: string): boolean {
  return UNAVAILABLE.some((re) => re.test(message));
}

/** Turns whatever the binding threw into one of the typed errors above. */
export function classifyError(err: unknown, operation: LibvirtOperation, domain: string | undefined, uri?: string): LibvirtError {
  if (err instanceof LibvirtError) return err;
  const msg = messageOf(err);
  if (isConnectionLoss(msg)) return new LibvirtUnavailableError(operation, domain, msg, uri);
  if (domain && NOT_FOUND.some((re) => re.test(msg))) return new DomainNotFoundError(operation, domain, msg, uri);
  return new LibvirtError(operation, domain, msg, uri);
}
