import { defineConfig } from 'vitest/config';

// One run covers every workspace. Sources are resolved through the `kvary-source` export
// condition, so tests run the TypeScript directly, without a build.
export default defineConfig({
  resolve: { conditions: ['kvary-source'] },
  ssr: { resolve: { conditions: ['kvary-source'] } },
  test: {
    include: ['packages/*/src/**/*.spec.ts', 'services/*/src/**/*.spec.ts', 'services/*/test/**/*.spec.ts', 'scripts/**/*.spec.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
