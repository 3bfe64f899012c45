/**
 * The reconciler's own, narrow use of libvirt: is a domain name taken, and removing a
 * domain whose launcher died. Only ever called with domain names of VMs this host created
 * (or, for `exists`, to refuse to touch a foreign domain).
 */
import { type LibvirtDriver, createLibvirtDriver } from '../../launcher/libvirt/index.js';
import { destroyIfActive, domainState, undefineIfDefined } from '../../launcher/cleanup.js';
import type { DomainJanitor } from '../agent/agent.js';
import type { DomainLookup } from './backend.js';

export class LibvirtDomains implements DomainJanitor, DomainLookup {
  private driver: LibvirtDriver | undefined;
  private connecting: Promise<LibvirtDriver> | undefined;

  constructor(private readonly uri: string) {}

  private conn(): Promise<LibvirtDriver> {
    if (this.driver) return Promise.resolve(this.driver);
    this.connecting ??= (async () => {
      const d = createLibvirtDriver({ uri: this.uri, eventSource: 'poll' });
      await d.connect();
      this.driver = d;
      return d;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.conn()).exists(name);
  }

  async removeDomain(name: string): Promise<'removed' | 'absent'> {
    const d = await this.conn();
    if ((await domainState(d, name)) === 'Absent') return 'absent';
    await destroyIfActive(d, name);
    await undefineIfDefined(d, name);
    return 'removed';
  }

  async close(): Promise<void> {
    await this.driver?.close();
    this.driver = undefined;
  }
}
