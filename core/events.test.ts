import { RateMeter } from './progress.js';

describe('RateMeter', () => {
  it('gives no rate from a single sample, then a rate and an ETA', () => {
    let now = 0;
    const m = new RateMeter(() => now);
    expect(m.sample(0, 1000)).toEqual({});
    now = 1000;
    const r = m.sample(100, 1000);
    expect(r.rate).toBeCloseTo(100, 5);
    expect(r.etaSeconds).toBeCloseTo(9, 5);
  });

  it('uses the average since the start at first, then smooths bursts instead of jumping to each instant rate', () => {
    let now = 0;
    const m = new RateMeter(() => now, 2000);
    m.sample(0, 100_000);
    now = 500;
    expect(m.sample(0, 100_000).rate).toBe(0);
    now = 1000;
    expect(m.sample(1000, 100_000).rate).toBeCloseTo(1000, 5);
    now = 3000;
    expect(m.sample(3000, 100_000).rate).toBeCloseTo(1000, 5);
    now = 3100;
    const r = m.sample(4000, 100_000); // a burst of 1000 units in 100 ms
    expect(r.rate!).toBeGreaterThan(1000);
    expect(r.rate!).toBeLessThan(2000);
  });

  it('starts over when the count goes backwards (a new phase)', () => {
    let now = 0;
    const m = new RateMeter(() => now);
    m.sample(500, 1000);
    now = 100;
    expect(m.sample(10, 1000)).toEqual({});
  });

  it('has no ETA when the total is unknown', () => {
    let now = 0;
    const m = new RateMeter(() => now);
    m.sample(0, undefined);
    now = 1000;
    expect(m.sample(50, undefined)).toEqual({ rate: 50 });
  });
});
