import { configDefaults, defineConfig } from 'vitest/config';

// Projects: `unit` (pure, fast, no host services), `integration` (real libvirtd,
// real QEMU guests under TCG, real git, real registries), `faults` and `cluster` (a real
// Kubernetes control plane). `npm test` runs them all, in that order (sequence.groupOrder):
// what needs the Kubernetes binaries comes last, so on a cold machine the Go build that
// scripts/test.sh starts in the background overlaps the unit and integration projects.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/integration/cluster/**', 'test/integration/dashboard/dashboard-cluster.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // Guests are heavy under TCG on 2 cores: one file at a time.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          // Cluster mode against one real control plane (etcd, kube-apiserver, scheduler,
          // controller-manager built from Go modules; see reconciler/cluster/testenv).
          name: 'cluster',
          // The dashboard served by the controller needs this project's control plane.
          include: ['test/integration/cluster/**/*.test.ts', 'test/integration/dashboard/dashboard-cluster.test.ts'],
          globalSetup: ['test/integration/global-setup.ts', 'test/integration/cluster/global-setup.ts'],
          // The first file starts the control plane (testenv-fixture.ts), waiting for its build
          // on a cold machine: the module's top-level await is bound by neither timeout.
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          sequence: { groupOrder: 3 },
        },
      },
      {
        test: {
          // Seeded fault injection (hardening issue, part 4): kills, daemon restarts, bad
          // commits and a full disk at random moments, then the invariants. Each file starts
          // what it kills itself (its own `up`, its own control plane) and restarts host
          // daemons, so the project runs alone, one file at a time, in a group of its own
          // between integration and cluster.
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 1_200_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
