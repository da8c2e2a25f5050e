// Jest runs the test files on at least two workers (jest.config.js), longest first when it knows
// their durations from an earlier run, and by file size on a clean clone (CI), where nothing is
// known. The slow QEMU files go first, in this order, whatever jest knows: the end-to-end test
// of a real Debian (about twenty minutes under software emulation) starts at once on one worker
// while the other works through the rest; the rest keep jest's own order.
const Sequencer = require('@jest/test-sequencer').default;

const FIRST = [
  'agent/debian.e2e.test.ts',
  'agent/workflow.e2e.test.ts',
  'agent/raw.e2e.test.ts',
  'agent/faults.e2e.test.ts',
  'agent/deploy/debian.integration.test.ts',
  'agent/deploy/whole-system.integration.test.ts',
  'agent/deploy/raw.integration.test.ts',
  'serve/proxydhcp.e2e.test.ts',
  'serve/first-boot.e2e.test.ts',
  'agent/share-faults.e2e.test.ts',
  'agent/deploy.e2e.test.ts',
  'qemu-tests/boot.e2e.test.ts',
  'qemu-tests/interactive.e2e.test.ts',
  'serve/netboot.e2e.test.ts',
];

class SlowFirstSequencer extends Sequencer {
  sort(tests) {
    const rank = (t) => {
      const i = FIRST.findIndex((f) => t.path.endsWith(`/${f}`));
      return i < 0 ? FIRST.length : i;
    };
    return [...super.sort(tests)].sort((a, b) => rank(a) - rank(b));
  }
}

module.exports = SlowFirstSequencer;
