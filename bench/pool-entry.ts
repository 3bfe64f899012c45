/**
 * Entry point of the bench-only `bench-pool` bundle (scripts/build-bundles.mjs), run by
 * bench/pool-bin.mjs:
 *
 *   node bench/pool-bin.mjs up <virtops up flags>        `virtops up` (the same command and flags,
 *                                                        registerUp) with the pool runtime injected;
 *                                                        VIRTOPS_BENCH_POOL_HOSTS=K spreads its launchers
 *                                                        over K host processes (default 1)
 *   node bench/pool-bin.mjs agent <virtops agent flags>  `virtops agent` likewise (with --process-runtime);
 *                                                        VIRTOPS_BENCH_NODE_PODS=N advertises room for N
 *                                                        launcher Pods (test:///default guests use no host)
 *   node bench/pool-bin.mjs launcher-pool --socket <p>   the pool's host process (bench/pool-runtime.ts)
 *
 * Bundled as the product's `up` is (reconciler/entry.ts), so the reconciler's RSS measured
 * through it is comparable with `node cli/bin.js up`; the pool runtime's code is the only
 * difference, and it stays out of every product bundle.
 */
import { join } from 'node:path';
import { Command } from 'commander';
import { registerUp } from '../cli/commands/up.js';
import { registerAgent } from '../cli/commands/agent.js';
import { PoolRuntime } from './pool-runtime.js';

const program = new Command('virtops-bench-pool').showHelpAfterError().configureOutput({ outputError: (s, write) => write(s) });
const hosts = Number(process.env['VIRTOPS_BENCH_POOL_HOSTS'] ?? '1');
registerUp(program, {
  options: (config) => ({ launcherRuntime: new PoolRuntime({ socketPath: join(config.stateDir, 'pool.sock'), logFile: join(config.stateDir, 'pool.log'), hosts }) }),
});
registerAgent(program, {
  options: (config) => {
    const pods = Number(process.env['VIRTOPS_BENCH_NODE_PODS'] ?? '0');
    return {
      launcherRuntime: new PoolRuntime({ socketPath: join(config.stateDir, 'pool.sock'), logFile: join(config.stateDir, 'pool.log') }),
      // As bench/cluster.ts's in-process agent: room for N VMs (the host's 2 CPUs fit ~20 launcher Pods' requests).
      ...(pods > 0 ? { capacity: { cpus: Math.max(64, pods), memoryBytes: (pods + 16) * 2 ** 30, pods: pods + 20 } } : {}),
    };
  },
});
program
  .command('launcher-pool')
  .description("the pool runtime's host process: many launchers in this one process (bench/pool-runtime.ts)")
  .requiredOption('--socket <path>', 'unix socket to serve')
  .action(async (opts: { socket: string }) => {
    const [{ runLauncherPool }, { pino }] = await Promise.all([import('./pool-runtime.js'), import('pino')]);
    const log = pino({ name: 'virtops-launcher-pool', level: process.env['VIRTOPS_LOG_LEVEL'] ?? 'warn' });
    const pool = await runLauncherPool(opts.socket, log);
    await new Promise<void>((resolve) => {
      const stop = (): void => void pool.close().then(resolve, resolve);
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    process.exit(0);
  });
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`virtops-bench-pool: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
