/**
 * Who the domain is: its libvirt name, UUID and the metadata a node agent uses to map a
 * libvirt domain back to its VMI.
 */
import { createHash } from 'node:crypto';
import type * as api from '../../api/kubevirt.js';
import { check } from './errors.js';
import type { XmlNode } from './xml.js';

/** XML namespace of virtops' element inside `<metadata>`. */
export const METADATA_NS = 'https://virtops.dev/xmlns/domain/v1';
export const METADATA_PREFIX = 'virtops';

/** Namespace for deriving firmware UUIDs from `<namespace>/<name>` (UUIDv5, RFC 4122 §4.3). */
const UUID_NAMESPACE = 'fdc34057-f2d5-4b18-ad2d-5b62d61af406';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface Identity {
  name: string;
  namespace: string;
  /** libvirt domain name: `<namespace>_<name>` (KubeVirt's convention). */
  domainName: string;
  uuid: string;
}

export function identityOf(vmi: api.VirtualMachineInstance): Identity {
  const name = vmi.metadata?.name ?? '';
  const namespace = vmi.metadata?.namespace ?? 'default';
  check(name !== '', 'metadata.name', 'the VMI has no name', 'set metadata.name (a DNS-1123 name such as "web-1")');
  check(
    name.length <= 253 && DNS_SUBDOMAIN.test(name),
    'metadata.name',
    `"${name}" is not a DNS-1123 subdomain`,
    'use lower-case letters, digits, "-" and ".", starting and ending with a letter or digit',
  );
  check(
    namespace.length <= 63 && DNS_LABEL.test(namespace),
    'metadata.namespace',
    `"${namespace}" is not a DNS-1123 label`,
    'use lower-case letters, digits and "-", at most 63 characters',
  );
  const given = vmi.spec.domain.firmware?.uuid;
  if (given !== undefined) {
    check(UUID.test(given), 'spec.domain.firmware.uuid', `"${given}" is not a UUID`, 'use the form 8-4-4-4-12 hex digits, or leave it unset');
  }
  return {
    name,
    namespace,
    domainName: `${namespace}_${name}`,
    // Derived rather than random so the guest keeps its machine identity across restarts
    // (KubeVirt likewise fills firmware.uuid from the VM's name).
    uuid: (given ?? uuidV5(UUID_NAMESPACE, `${namespace}/${name}`)).toLowerCase(),
  };
}

/** `<metadata>` content: lets a node agent list its domains and find their VMIs. */
export function metadataXml(vmi: api.VirtualMachineInstance, id: Identity): XmlNode {
  const p = METADATA_PREFIX;
  return {
    [`${p}:vmi`]: {
      [`@xmlns:${p}`]: METADATA_NS,
      // A VMI built from a VM before the controller assigned a uid has none yet.
      [`${p}:uid`]: vmi.metadata.uid,
      [`${p}:name`]: id.name,
      [`${p}:namespace`]: id.namespace,
    },
  };
}

export function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
