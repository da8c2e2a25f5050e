// Unit tests are pure and fast; integration tests drive the real tools (wimlib, sfdisk, mkfs,
// loop devices) and need root plus the packages scripts/setup installs; e2e tests boot QEMU.
const common = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json'}],
  },
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
};

import { availableParallelism } from 'node:os';

export default {
  // At least two workers, even on two cores: the QEMU files spend their time in one emulated CPU
  // each, so the slowest of them (the real-Debian e2e) runs beside the rest instead of after it.
  // Test files that share a resource say how (the PE build cache, the cached Debian tree, loop
  // devices checked by their own names).
  maxWorkers: Math.max(2, availableParallelism() - 1),
  // A global option: jest takes testTimeout from here and ignores it inside a project. Without it
  // every test not setting its own had 5 s, and integration tests on loop devices ran past that
  // while the QEMU tests held the CPU (partition/apply's wipe test took over 5 s in a full run).
  // QEMU tests give each test its own, longer timeout.
  testTimeout: 120_000,
  reporters: ['default', '<rootDir>/test-support/summary-reporter.cjs'],
  testSequencer: '<rootDir>/test-support/sequencer.cjs',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '/dist/', '\\.integration\\.test\\.ts$', '\\.e2e\\.test\\.ts$'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/**/*.integration.test.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/**/*.e2e.test.ts'] },
  ],
};
