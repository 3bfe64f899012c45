import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // virtops ships TypeScript sources: let vitest transform them instead of handing
    // them to Node as an external dependency.
    server: { deps: { inline: ['virtops'] } },
  },
});
