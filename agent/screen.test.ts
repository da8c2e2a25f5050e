import { screenLine } from './screen.js';

const base = { imagepe: 1 as const, time: '2026-11-25T23:00:00.000Z' };

describe('screenLine', () => {
  it('says what the PE sees when it is ready', () => {
    const text = screenLine({ ...base, type: 'ready', node: 'v20.20.2', kernel: '6.1.0', mode: 'deploy', plan: 'smb://s/q/plan.yaml', disks: [{ path: '/dev/sda', size: 2 * 1024 ** 3, model: 'QEMU HARDDISK', removable: false, readOnly: false }], bootMedium: '/dev/sr0', uptimeSeconds: 9 });
    expect(text).toContain('disks: /dev/sda 2.00 GiB QEMU HARDDISK');
    expect(text).toContain('plan: smb://s/q/plan.yaml');
  });

  it('overwrites progress in place and ends step lines', () => {
    expect(screenLine({ ...base, type: 'progress', step: 'apply', phase: 'Extracting file data', unit: 'bytes', done: 512 * 1024 ** 2, total: 1024 ** 3, rate: 64 * 1024 ** 2, etaSeconds: 8 })).toBe(
      '  Extracting file data 50%  512 MiB / 1.00 GiB  64.0 MiB/s  ETA 8s\x1b[K\r',
    );
    expect(screenLine({ ...base, type: 'step', step: 'apply', status: 'done', detail: '1 "base" -> root' })).toBe('\x1b[K+ apply done: 1 "base" -> root\n');
  });

  it('tells whether the disk was touched when a step fails, with the command output', () => {
    const text = screenLine({ ...base, type: 'failed', step: 'apply', code: 'COMMAND_FAILED', message: 'wimlib-imagex failed', stderrTail: 'No space left on device', diskTouched: true });
    expect(text).toContain('FAILED at apply: wimlib-imagex failed');
    expect(text).toContain('  | No space left on device');
    expect(text).toContain('NOT deployed');
  });
});
