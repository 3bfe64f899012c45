import type { Command } from 'commander';
import { untilStopped } from '../stop-signal.js';
import type { AgentConfig, RawAgentFlags, runAgent as RunAgent } from '../../reconciler/cluster/run-agent.js';
import { DEFAULT_STATE_DIR } from '../../reconciler/agent/host-config.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/**
 * `virtops agent`: the per-node agent. With --process-runtime it also registers the Node
 * and runs the launcher Pods bound to it as processes (no kubelet needed); without, kubelet
 * runs them and the agent only drives the launchers. `inject.options`: what code (not flags)
 * passes to runAgent; only benchmarks use it (bench/pool-entry.ts: the pool runtime).
 */
export function registerAgent(program: Command, inject: { options?: (config: AgentConfig) => Parameters<typeof RunAgent>[2] } = {}): void {
  program
    .command('agent')
    .description('run the node agent: drive the launchers of the VMIs on this node, report VMI status, handle deletion with the grace period')
    .requiredOption('--node <name>', 'this node\'s name')
    .option('--kubeconfig <file>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
    .option('--process-runtime', 'register the Node and run launcher Pods as processes (single hosts without kubelet)')
    .option('--state-dir <dir>', 'launcher Pod directories, image cache', DEFAULT_STATE_DIR)
    .option('--emulation <mode>', 'auto | kvm | tcg: overrides the launcher Pods\' --emulation on this host', 'auto')
    .option('--libvirt-uri <uri>', 'libvirt connection for launchers', 'qemu:///system')
    .option('--insecure-registry <host:port>', 'registry reached over plain HTTP (repeatable)', collect)
    .option('--interval <duration>', 'resync period', '1m')
    .option('--launcher-socket-dir <dir>', 'beside a kubelet (no --process-runtime): where launcher Pods publish their sockets, as synth\'s nodeSocketDir (default /var/lib/virtops/launchers)')
    .option('--tls-cert-file <file>', 'console endpoint (process runtime): serving certificate, as kubelet\'s')
    .option('--tls-private-key-file <file>', 'console endpoint: its private key')
    .option('--client-ca-file <file>', 'console endpoint: CA of the API server\'s kubelet client certificate (--kubelet-client-certificate); the only accepted clients')
    .option('--address <ip>', 'console endpoint: listen address', '0.0.0.0')
    .option('--port <port>', 'console endpoint: port, published as the Node\'s kubelet port (0: a free one)', '10250')
    .option('--node-ip <ip>', 'the Node\'s InternalIP, where the API server connects (default: the first non-loopback IPv4 address)')
    .action(async (raw: RawAgentFlags) => {
      const [{ runAgent, validateAgentFlags }, { daemonLogger }] = await Promise.all([import('../../reconciler/cluster/run-agent.js'), import('../daemon-log.js')]);
      const v = validateAgentFlags(raw);
      if (!v.ok) throw new Error(`invalid flags:\n  ${v.errors.join('\n  ')}`);
      const log = daemonLogger('virtops-agent');
      const handle = await runAgent(v.config, log, inject.options?.(v.config));
      await untilStopped(async () => {
        log.info('stopping (launchers keep running)');
        await handle.stop();
      }, log).catch((err: unknown) => log.error({ err }, 'stopping failed'));
      process.exit(0);
    });
}
