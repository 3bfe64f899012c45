/** Binds the launcher to the real libvirt driver, volume code and converter. */
import type { Logger } from 'pino';
import type { LauncherDeps } from './launcher.js';
import { type LauncherConfig, launcherPaths } from './flags.js';
import type { VolumeBackend } from './backend.js';
import { join } from 'node:path';
import type { VirtualMachineInstance } from '../api/kubevirt.js';
import { createLibvirtDriver } from './libvirt/index.js';
import { chooseEmulation, probeHost } from './emulation.js';
import { convertVmi } from './prepare.js';
import { VirshAgentClient } from './guest-agent.js';
import { DirectorySecretSource } from './volumes/secrets.js';

export async function createLauncherDeps(config: LauncherConfig, log: Logger): Promise<LauncherDeps> {
  return {
    // Loaded in the background when the launcher starts, with the validator (prepare.ts).
    convert: convertVmi,
    // Lifecycle events by reading this VMI's domain state once a second through the
    // binding: a `virsh event --loop` child per VM cost ~19 MiB RSS (~3 MiB private) for
    // the same information. Each read is two libvirt calls (~1 ms of launcher CPU); every
    // 500 ms cost ~2.5 ms of CPU per second per VM, so a second is the compromise between
    // CPU per idle VM and how soon a stop is noticed (the 5 s refresh is the fallback).
    driver: createLibvirtDriver({ uri: config.libvirtUri, eventSource: 'poll', pollIntervalMs: 1000, watchDomains: [launcherPaths(config).domainName] }),
    volumes: await volumeBackend(config, log),
    agent: new VirshAgentClient(config.libvirtUri),
    readSecret: (namespace, name) => secretSource(config).get('secret', namespace, name),
    log,
    resolveEmulation: async () =>
      config.emulation === 'auto' ? chooseEmulation('auto', await probeHost(config.libvirtUri)) : chooseEmulation(config.emulation, {
        kvmDeviceUsable: false, libvirtOffersKvm: false, hostIsVirtualMachine: false, trustNestedKvm: false,
      }),
  };
}

/**
 * launcher/volumes keyed the way the launcher Pod lays out its directories: the VM's
 * directory is --ephemeral-disk-dir (the Pod's own emptyDir), images come from the shared
 * --image-store, Secrets/ConfigMaps/ServiceAccounts from <--secrets-dir>/{secrets,configmaps,serviceaccounts}.
 * The handle persisted for the monitor is the VMI's identity and volumes (what release needs).
 */
async function volumeBackend(config: LauncherConfig, log: Logger): Promise<VolumeBackend> {
  const { materializeVolumes, releaseVolumes, ImageStore } = await import('./volumes/index.js');
  const imageStore = new ImageStore({
    dir: config.imageStore,
    insecureRegistries: config.insecureRegistries,
    onTransferRetry: (r) => log.warn(r, `registry transfer broke (${r.step}, try ${r.attempt} of ${r.attempts}); trying again`),
  });
  const secrets = secretSource(config);
  const vmDir = config.ephemeralDiskDir;
  return {
    async materialize(vmi) {
      const m = await materializeVolumes(vmi, { vmDir, imageStore, secrets, pvcDir: config.pvcDir, ...(config.vmiDisksDir ? { vmiDisksDir: config.vmiDisksDir } : {}) });
      const handle: VolumeHandle = { vmDir, vmi: { metadata: vmi.metadata, spec: { volumes: vmi.spec.volumes ?? [] } } };
      return { volumes: m.volumes, ...(m.kernelBoot ? { kernelBoot: m.kernelBoot } : {}), handle };
    },
    async release(handle) {
      const h = handle as VolumeHandle;
      // Ephemeral files only (overlays, ISOs); emptyDisks live with the VM's directory.
      await releaseVolumes(h.vmi as VirtualMachineInstance, { vmDir: h.vmDir }, { deleteVm: false });
    },
  };
}

/** Secrets, ConfigMaps, ServiceAccounts as the launcher Pod mounts them under --secrets-dir. */
function secretSource(config: LauncherConfig): DirectorySecretSource {
  return new DirectorySecretSource({
    secretsDir: join(config.secretsDir, 'secrets'),
    configMapsDir: join(config.secretsDir, 'configmaps'),
    serviceAccountsDir: join(config.secretsDir, 'serviceaccounts'),
  });
}

interface VolumeHandle {
  vmDir: string;
  vmi: { metadata: VirtualMachineInstance['metadata']; spec: { volumes: NonNullable<VirtualMachineInstance['spec']['volumes']> } };
}
