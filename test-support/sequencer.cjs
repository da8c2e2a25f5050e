// Jest runs the test files on two workers, longest first when it knows their durations from an
// earlier run, and by file size on a clean clone (CI), where nothing is known. The end-to-end test
// of a real Debian takes about twenty minutes under software emulation: started last, it runs
// alone after everything else; started first, it overlaps the rest. So the slow QEMU files go
// first, in this order, whatever jest knows; the rest keep jest's own order.
const Sequencer = require('@jest/test-sequencer').default;

const FIRST = [
  'agent/debian.e2e.test.ts',
  'agent/workflow.e2e.test.ts',
  'agent/faults.e2e.test.ts',
  'agent/deploy/debian.integration.test.ts',
  'agent/deploy/whole-system.integration.test.ts',
  'agent/share-faults.e2e.test.ts',
  'agent/deploy.e2e.test.ts',
  'qemu-tests/boot.e2e.test.ts',
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
