/**
 * The least a launcher with one Node process per VM can do (bench:floor's "Node floor"):
 * start Node, load the libvirt binding as the launcher does (its Hypervisor module alone),
 * connect to qemu:///system, define the domain XML given and start it, exit. None of virtops'
 * own work (the VMI's validation and conversion, disks, the ISO, the command socket, status).
 *
 *   node bench/node-floor-launcher.mjs <domain.xml>
 */
import { readFile } from 'node:fs/promises';

const file = process.argv[2];
if (!file) throw new Error('usage: node bench/node-floor-launcher.mjs <domain.xml>');
const { Hypervisor } = await import(new URL('./hypervisor.js', import.meta.resolve('@unraid/libvirt')).href);
const hv = new Hypervisor({ uri: 'qemu:///system' });
await hv.connectOpen();
try {
  await hv.domainCreate(await hv.domainDefineXML(await readFile(file, 'utf8')));
} finally {
  await hv.connectClose();
}
