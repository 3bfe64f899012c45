/**
 * Kubernetes naming rules (RFC 1123) as used by KubeVirt: object names are DNS subdomains,
 * namespaces and the names of disks, volumes, interfaces and networks are DNS labels
 * (volume names become Pod volume names; interface names end up in host device names).
 */

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_MAX = 63;
const SUBDOMAIN_MAX = 253;

/** Why `value` is not a DNS-1123 label, or undefined when it is one. */
export function dns1123LabelProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty';
  if (value.length > LABEL_MAX) return `is ${value.length} characters long (at most ${LABEL_MAX})`;
  if (!LABEL.test(value)) {
    return 'must consist of lower-case letters, digits and "-", and start and end with a letter or digit';
  }
  return undefined;
}

/** Why `value` is not a DNS-1123 subdomain, or undefined when it is one. */
export function dns1123SubdomainProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty';
  if (value.length > SUBDOMAIN_MAX) return `is ${value.length} characters long (at most ${SUBDOMAIN_MAX})`;
  if (!value.split('.').every((part) => part.length > 0 && LABEL.test(part))) {
    return 'must consist of lower-case letters, digits, "-" and ".", and start and end with a letter or digit';
  }
  return undefined;
}
