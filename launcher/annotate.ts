/**
 * The launcher's mark on a domain: a hash of the VMI spec it was built from, kept in the
 * domain's `<metadata>`. A later sync compares hashes instead of diffing XML (libvirt
 * rewrites XML with defaults, so a textual compare would always differ).
 */
import { createHash } from 'node:crypto';

export const LAUNCHER_NS = 'https://virtops.dev/xmlns/launcher/v1';

/** Stable JSON: object keys sorted, so equal specs hash equally. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableStringify(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function specHash(v: unknown): string {
  return createHash('sha256').update(stableStringify(v)).digest('hex').slice(0, 32);
}

/** Adds `<virtops-launcher:sync specHash=".."/>` to the domain's `<metadata>` (creating it if needed). */
export function annotateDomainXml(xml: string, hash: string): string {
  const el = `<virtops-launcher:sync xmlns:virtops-launcher="${LAUNCHER_NS}" specHash="${hash}"/>`;
  if (/<metadata\s*\/>/.test(xml)) return xml.replace(/<metadata\s*\/>/, `<metadata>${el}</metadata>`);
  if (/<metadata>/.test(xml)) return xml.replace(/<metadata>/, `<metadata>${el}`);
  const m = /<\/name>/.exec(xml);
  if (!m) throw new Error('domain XML has no <name>');
  return `${xml.slice(0, m.index + m[0].length)}<metadata>${el}</metadata>${xml.slice(m.index + m[0].length)}`;
}

/** The spec hash stored by annotateDomainXml, or null when the domain has none. */
export function readSpecHash(xml: string): string | null {
  const m = /<(?:[\w-]+:)?sync\b[^>]*xmlns(?::[\w-]+)?="https:\/\/virtops\.dev\/xmlns\/launcher\/v1"[^>]*specHash="([0-9a-f]+)"/.exec(xml)
    ?? /<(?:[\w-]+:)?sync\b[^>]*specHash="([0-9a-f]+)"[^>]*xmlns(?::[\w-]+)?="https:\/\/virtops\.dev\/xmlns\/launcher\/v1"/.exec(xml);
  return m?.[1] ?? null;
}
