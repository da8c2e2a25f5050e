import { PlanError } from '../agent/plan/index.js';

/** The problems a plan parser names for `value`; fails the test when the plan is accepted. */
export function problemsOf(parse: (value: unknown, source: string) => unknown, value: unknown): string[] {
  try {
    parse(value, 'test plan');
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return (e as PlanError).problems;
  }
  throw new Error('the plan was accepted');
}

/** A deep copy of `good` with one change made to it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function changed(good: unknown, change: (p: Record<string, any>) => void): unknown {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const p = structuredClone(good) as Record<string, any>;
  change(p);
  return p;
}
