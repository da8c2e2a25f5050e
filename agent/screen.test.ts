import { screenLine } from './screen.js';

const base = { imagepe: 1 as const, time: '2026-11-25T23:00:00.000Z' };

describe('screenLine', () => {
  it('says what the PE sees when it is ready', () => {
    const text = screenLine({ ...base, type: 'ready', node: 'v20.20.2', kernel: '6.1.0', mode: 'deploy', plan: 'smb://s/q/plan.yaml', disks: [{ path: '/dev/sda', size: 2 * 1024 ** 3, model: 'QEMU HARDDISK', removable: false, readOnly: false }], bootMedium: '/dev/sr0', uptimeSeconds: 9 });
    expect(text).toContain('disks: /dev/sda 2.00 GiB QEMU HARDDISK');
    expect(text).toContain('plan: smb://s/q/plan.yaml');
    expect(text).not.toContain('firmware');
    const sb = screenLine({ ...base, type: 'ready', node: 'v20.20.2', kernel: '6.1.0', mode: 'deploy', plan: null, disks: [], bootMedium: null, firmware: { type: 'uefi', secureBoot: true, lockdown: 'integrity' }, uptimeSeconds: 9 });
    expect(sb).toContain('firmware: UEFI, Secure Boot on, kernel lockdown: integrity');
    const bios = screenLine({ ...base, type: 'ready', node: 'v20.20.2', kernel: '6.1.0', mode: 'deploy', plan: null, disks: [], bootMedium: null, firmware: { type: 'bios', secureBoot: false, lockdown: 'none' }, uptimeSeconds: 9 });
    expect(bios).toContain('firmware: BIOS\n');
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

  it('says what was captured, and whose disk a failed capture touched', () => {
    expect(screenLine({ ...base, type: 'captured', wim: 'images/ref.wim', index: 2, name: 'custom', sizeBytes: 300 * 1024 ** 2, durationMs: 61_000, after: 'poweroff' })).toBe(
      '\x1b[KCAPTURED image 2 "custom" into images/ref.wim (300 MiB) in 1m01s; next: poweroff\n',
    );
    expect(screenLine({ ...base, type: 'failed', step: 'capture', code: 'NO_SPACE', message: 'full', stderrTail: '', diskTouched: true })).toContain('The reference disk was generalized');
    // The technician console asks what comes next itself: the run's own "after" is left out there.
    expect(screenLine({ ...base, type: 'captured', wim: 'w.wim', index: 1, name: 'n', sizeBytes: 1, durationMs: 1000, after: 'shell' }, { next: false })).toBe('\x1b[KCAPTURED image 1 "n" into w.wim (1 B) in 1s\n');
    expect(screenLine({ ...base, type: 'deployed', disk: '/dev/vda', hostname: 'h', machineId: null, partitions: [], durationMs: 1000, after: 'shell' }, { next: false })).toBe('\x1b[KDEPLOYED /dev/vda as h in 1s\n');
    expect(screenLine({ ...base, type: 'failed', step: 'source', code: 'NOT_FOUND', message: 'none', stderrTail: '', diskTouched: false })).toContain('The reference disk was not touched.');
  });
});
