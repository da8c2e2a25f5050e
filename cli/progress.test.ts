import { progressLine } from './progress.js';

describe('progressLine', () => {
  it('shows phase, bar, percent, amounts, rate and ETA', () => {
    const line = progressLine({ type: 'progress', operation: 'apply', phase: 'Extracting file data', unit: 'bytes', done: 512 * 1024 ** 2, total: 1024 ** 3, rate: 100 * 1024 ** 2, etaSeconds: 5.1 }, 10);
    expect(line).toBe('Extracting file data █████░░░░░  50%  512 MiB / 1.00 GiB  100 MiB/s  ETA 5s');
  });

  it('shows only the amount while the total is unknown', () => {
    expect(progressLine({ type: 'progress', operation: 'capture', phase: 'Scanning', unit: 'bytes', done: 2048 }, 10)).toBe('Scanning: 2.00 KiB');
  });

  it('counts files in files, without a byte rate', () => {
    expect(progressLine({ type: 'progress', operation: 'apply', phase: 'Creating files', unit: 'files', done: 10, total: 10, rate: 3 }, 4)).toBe('Creating files ████ 100%  10 files / 10 files');
  });
});
