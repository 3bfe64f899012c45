import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure, fast, no host services) and `integration` (real libvirtd,
// real QEMU guests under TCG, real git, real registries). `npm test` runs both.
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
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // Guests are heavy under TCG on 2 cores: one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
