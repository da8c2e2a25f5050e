import { bindMounts, exitFromStatus } from './runtime.js';

describe('container runtime', () => {
  it('binds each path QEMU opens once, at its own path, writable only where QEMU writes', () => {
    expect(
      bindMounts([
        { path: '/work/vm', writable: true },
        { path: '/out/imagepe.iso', writable: false },
        { path: '/work/vm/disk.qcow2', writable: true },
        { path: '/srv/share', writable: true },
        { path: '/out/imagepe.iso', writable: false },
      ]),
    ).toEqual([
      { source: '/work/vm', target: '/work/vm', mode: 'rw' },
      { source: '/srv/share', target: '/srv/share', mode: 'rw' },
      { source: '/out/imagepe.iso', target: '/out/imagepe.iso', mode: 'ro' },
    ]);
    // A writable file under a read-only folder makes the folder's bind writable.
    expect(bindMounts([{ path: '/pxe', writable: false }, { path: '/pxe/disk.raw', writable: true }])).toEqual([{ source: '/pxe', target: '/pxe', mode: 'rw' }]);
    // A sibling with a common prefix is not inside the folder.
    expect(bindMounts([{ path: '/a', writable: false }, { path: '/ab', writable: false }])).toHaveLength(2);
  });

  it("reports docker's 128 + N statuses as the signal, as the native runtime does", () => {
    expect(exitFromStatus(0)).toEqual({ exitCode: 0, signal: undefined });
    expect(exitFromStatus(1)).toEqual({ exitCode: 1, signal: undefined });
    expect(exitFromStatus(137)).toEqual({ exitCode: undefined, signal: 'SIGKILL' });
    expect(exitFromStatus(143)).toEqual({ exitCode: undefined, signal: 'SIGTERM' });
    expect(exitFromStatus(undefined)).toEqual({ exitCode: undefined, signal: undefined });
  });
});
