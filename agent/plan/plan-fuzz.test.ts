import fc from 'fast-check';
import { parsePlan } from './index.js';
import { brokenLayout, brokenPlan, checkBrokenLayout, checkBrokenPlan, LAYOUT_MUTATIONS, PLAN_MUTATIONS, runFuzz, setAt, validPlanInput } from '../../test-support/reliability/fuzz.js';

// Property tests: hundreds of broken plans per kind of mistake, each of which must be refused by
// validation with a problem that names the broken field and the form it expects, never accepted
// and never answered with another exception. A failing run prints the shrunk plan and the faults.

const RUNS = 300;

describe('the base plan of the fuzzer', () => {
  it('is valid, so every rejection below is caused by the one mutation', () => {
    expect(() => parsePlan(validPlanInput())).not.toThrow();
  });

  it('is not changed by a mutation (each case starts from the same plan)', () => {
    const before = JSON.stringify(validPlanInput());
    setAt(validPlanInput(), ['source', 'url'], 'x');
    expect(JSON.stringify(validPlanInput())).toBe(before);
  });
});

describe.each(PLAN_MUTATIONS)('a plan broken by %s', (kind) => {
  it(`is refused by parsePlan naming the field and the expected form (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(brokenPlan(kind), (b) => {
        const v = checkBrokenPlan(b);
        if (v.outcome !== 'rejected' || v.faults.length > 0) throw new Error(`${b.change}: ${v.outcome}\n${v.faults.join('\n')}`);
      }),
      { numRuns: RUNS, seed: 0x1ea8 },
    );
  });
});

describe.each(LAYOUT_MUTATIONS)('a layout broken by %s', (kind) => {
  it(`is refused by the planner with a LayoutError naming the disk and the problem (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(brokenLayout(kind), (b) => {
        const v = checkBrokenLayout(b);
        if (v.outcome !== 'rejected' || v.faults.length > 0) throw new Error(`${v.outcome}\n${v.faults.join('\n')}`);
      }),
      { numRuns: RUNS, seed: 0x1ea8 },
    );
  });
});

// What the fuzzer found, pinned: each was accepted by validation (or refused without saying the
// expected form) and only failed later, at deploy time.
describe('findings of the fuzzer', () => {
  const problemsOf = (path: (string | number)[], value: unknown) => {
    const v = checkBrokenPlan({ kind: 'bad-size', path, change: `${path.join('.')} = ${JSON.stringify(value)}`, value: setAt(validPlanInput(), path, value) });
    expect(v.outcome).toBe('rejected');
    expect(v.faults).toEqual([]);
    return v.problems;
  };

  it.each(['5Mi', '0.5B', '1.0000001KiB', '99999999999999PiB', '0%', '150%'])('a partition size %p that the planner cannot use is a validation error', (size) => {
    expect(problemsOf(['target', 'layout', 'partitions', 3, 'size'], size)).toEqual([expect.stringMatching(/^target\.layout\.partitions\[3\]\.size: expected a size such as "512MiB"/)]);
  });

  it.each(['1Mo', '4Gi', '0.5B'])('a disk rule size %p says the form it expects', (size) => {
    expect(problemsOf(['target', 'disk', 'maxSize'], size)).toEqual([expect.stringMatching(/^target\.disk(\.maxSize)?: expected a byte size such as 100GiB/)]);
  });

  it('a source url with credentials is refused by validation, before it could reach an event or the log', () => {
    expect(problemsOf(['source', 'url'], 'smb://deploy:s3cret@10.0.2.4/images')).toEqual(['source.url: expected no user or password in the URL; give them in source.credentials']);
    expect(problemsOf(['source', 'url'], 'https://token@images.example/x')).toHaveLength(1);
  });

  it('sizes and urls that are fine stay fine', () => {
    for (const size of ['1.5GiB', '4096', ' 512 MiB ', '100%', '0.5%', 'rest']) expect(() => parsePlan(setAt(validPlanInput(), ['target', 'layout', 'partitions', 3, 'size'], size))).not.toThrow();
    for (const url of ['smb://10.0.2.4/images', 'http://10.0.2.2:8000/a@b/images', 'file:///srv/x@y']) expect(() => parsePlan(setAt(validPlanInput(), ['source', 'url'], url))).not.toThrow();
  });
});

describe('the checker itself', () => {
  // The properties above can only fail if the checker can tell a bad rejection from a good one.
  it('reports an accepted plan, a rejection naming another field, and a crash', () => {
    expect(checkBrokenPlan({ kind: 'wrong-type', path: ['logs'], change: 'nothing', value: validPlanInput() }).outcome).toBe('accepted');
    const elsewhere = checkBrokenPlan({ kind: 'wrong-type', path: ['after'], change: 'logs broken, after claimed', value: setAt(validPlanInput(), ['logs'], 'yes') });
    expect(elsewhere.outcome).toBe('rejected');
    expect(elsewhere.faults.join('\n')).toMatch(/no problem names after/);
    const hostile = { get source(): never { throw new RangeError('boom'); } };
    expect(checkBrokenPlan({ kind: 'wrong-type', path: ['source'], change: 'a getter that throws', value: hostile }).outcome).toBe('crashed');
  });

  it('counts every case in the figures the bench reports', () => {
    const f = runFuzz(5, 1);
    expect(f.tried).toBe(5 * (PLAN_MUTATIONS.length + LAYOUT_MUTATIONS.length));
    expect(f.rejected + f.accepted + f.crashed + f.unclear).toBe(f.tried);
  });
});
