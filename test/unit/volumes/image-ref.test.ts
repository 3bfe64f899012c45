import { describe, expect, it } from 'vitest';
import {
  defaultPullPolicy, isTransientTransferError, lookupInLayer, pinnedReference, registryHost, repositoryOf, skopeoMessage,
} from '../../../launcher/volumes/image-ref.js';

describe('defaultPullPolicy (Kubernetes rule)', () => {
  it.each([
    ['quay.io/containerdisks/fedora', 'Always'],
    ['quay.io/containerdisks/fedora:latest', 'Always'],
    ['quay.io/containerdisks/fedora:40', 'IfNotPresent'],
    ['127.0.0.1:5000/virtops/disk', 'Always'],
    ['127.0.0.1:5000/virtops/disk:v1', 'IfNotPresent'],
    ['quay.io/x/y@sha256:abc', 'IfNotPresent'],
  ])('%s → %s', (image, policy) => expect(defaultPullPolicy(image)).toBe(policy));
});

describe('registryHost / repositoryOf / pinnedReference', () => {
  it.each([
    ['fedora', 'docker.io', 'fedora'],
    ['library/fedora:40', 'docker.io', 'library/fedora'],
    ['localhost/a/b:1', 'localhost', 'localhost/a/b'],
    ['127.0.0.1:5000/virtops/test-disk:latest', '127.0.0.1:5000', '127.0.0.1:5000/virtops/test-disk'],
    ['127.0.0.1:5000/virtops/test-disk', '127.0.0.1:5000', '127.0.0.1:5000/virtops/test-disk'],
    ['quay.io/a/b@sha256:ff', 'quay.io', 'quay.io/a/b'],
  ])('%s', (image, host, repo) => {
    expect(registryHost(image)).toBe(host);
    expect(repositoryOf(image)).toBe(repo);
    expect(pinnedReference(image, 'sha256:00')).toBe(`${repo}@sha256:00`);
  });
});

describe('skopeoMessage', () => {
  it('extracts the msg of a fatal log line', () => {
    const stderr = 'time="2024-01-01T00:00:00Z" level=fatal msg="reading manifest latest in 127.0.0.1:1/virtops/nope: manifest unknown: manifest unknown"\n';
    expect(skopeoMessage(stderr)).toBe('reading manifest latest in 127.0.0.1:1/virtops/nope: manifest unknown: manifest unknown');
  });
  it('unescapes quotes and falls back to the whole text', () => {
    expect(skopeoMessage('level=fatal msg="Error parsing image name \\"docker://x\\""')).toBe('Error parsing image name "docker://x"');
    expect(skopeoMessage('  plain failure \n')).toBe('plain failure');
    expect(skopeoMessage('')).toMatch(/without a message/);
  });
});

describe('isTransientTransferError', () => {
  it.each([
    'time="…" level=fatal msg="writing blob: happened during read: unexpected EOF"',
    'reading blob sha256:ab: Get "http://127.0.0.1:1/v2/a/blobs/sha256:ab": EOF',
    'reading blob sha256:ab: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer',
    'write tcp 10.0.0.1:1->10.0.0.2:5000: write: broken pipe',
    'pinging container registry q.io: Get "https://q.io/v2/": net/http: TLS handshake timeout',
    'reading manifest latest in q.io/a: received unexpected HTTP status: 503 Service Unavailable',
  ])('a broken transfer is tried again: %s', (stderr) => expect(isTransientTransferError(stderr)).toBe(true));
  it.each([
    'reading manifest latest in 127.0.0.1:1/virtops/nope: manifest unknown: manifest unknown',
    'pinging container registry 127.0.0.1:1: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused',
    'reading manifest latest in q.io/a: unauthorized: authentication required',
    'Error parsing image name "docker://x"',
  ])('what was asked fails at once: %s', (stderr) => expect(isTransientTransferError(stderr)).toBe(false));
});

describe('lookupInLayer', () => {
  const listing = ['./', './disk/', './disk/disk.qcow2', './boot/', './boot/vmlinuz', 'etc/motd'];
  it('finds an exact file, with or without ./', () => {
    expect(lookupInLayer(listing, '/boot/vmlinuz', false)).toEqual({ found: './boot/vmlinuz' });
    expect(lookupInLayer(listing, '/etc/motd', false)).toEqual({ found: 'etc/motd' });
  });
  it('finds the single file of a directory (containerDisk /disk)', () => {
    expect(lookupInLayer(listing, '/disk', true)).toEqual({ found: './disk/disk.qcow2' });
  });
  it('reports absence and never matches directories as files', () => {
    expect(lookupInLayer(listing, '/boot/initrd.img', false)).toEqual({ absent: true });
    expect(lookupInLayer(listing, '/disk', false)).toEqual({ absent: true });
    expect(lookupInLayer(['./other/x'], '/disk', true)).toEqual({ absent: true });
  });
  it('honours whiteouts so lower layers are not consulted', () => {
    expect(lookupInLayer(['./boot/.wh.vmlinuz'], '/boot/vmlinuz', false)).toEqual({ deleted: true });
    expect(lookupInLayer(['./disk/.wh..wh..opq'], '/disk', true)).toEqual({ deleted: true });
  });
  it('refuses to guess between several disks', () => {
    expect(() => lookupInLayer(['disk/a.img', 'disk/b.qcow2'], '/disk', true)).toThrow(/several files under \/disk \(disk\/a.img, disk\/b.qcow2\)/);
  });
});
