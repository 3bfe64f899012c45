import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Integration tests need a running libvirtd; start it (idempotently) through the same
 * script the README's main job uses, so tests and users exercise one code path.
 */
export default function setup(): void {
  const script = fileURLToPath(new URL('../../scripts/setup-host.sh', import.meta.url));
  execFileSync('bash', [script], { stdio: 'inherit' });
}
