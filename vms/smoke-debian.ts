/**
 * The seed's smoke VM (vms/kubevirt-smoke-fedora.ts, spec unchanged) with the image this
 * offline machine has: the Debian 12 containerDisk `npm run guest-image` builds and the README
 * ("Real guests") pushes to the local registry, in place of kubevirt/fedora-cloud-container-disk-demo.
 * Same CPU, 4G memory request, q35, clock, bridge binding on the pod network, 2Gi emptyDisk
 * and NoCloud user-data from a Secret; its own name, Secret and firmware UUID so both can be
 * defined on one host.
 *
 * The Secret `smoke-debian-cloudinit` (key `userdata`, never committed; on a single host the
 * file `<state-dir>/secrets/secrets/default/smoke-debian-cloudinit/userdata`) gives it the
 * seed's user-data with the password as a hash, e.g.
 *
 *   #cloud-config
 *   user: {name: fedora, lock_passwd: false, passwd: "<mkpasswd -m sha-512 changeme>"}
 *   ssh_pwauth: true
 *
 * Then `virtops console smoke-debian` logs in as fedora with that password, and `lsblk` in the
 * guest shows the emptyDisk (2G, vdb). `virtops up` needs `--insecure-registry 127.0.0.1:5000`.
 */
import type { Construct } from 'constructs';
import { KubevirtSmokeFedora } from './kubevirt-smoke-fedora.js';

export const SMOKE_DEBIAN_IMAGE = '127.0.0.1:5000/virtops/debian-12:latest';

export class SmokeDebian extends KubevirtSmokeFedora {
  public constructor(scope: Construct, id = 'smoke-debian') {
    super(scope, id, { name: 'smoke-debian', image: SMOKE_DEBIAN_IMAGE, cloudInitSecret: 'smoke-debian-cloudinit', firmwareUuid: 'c3ecdb42-282e-44c3-8266-91b99ac91262' });
  }
}
