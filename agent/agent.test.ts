import { parseAgentCommandLine, splitKernelCommandLine } from './cmdline.js';
import { disksFromSysBlock, isoVolumeId, parseSysBlockEntry } from './disks.js';
import { formatEvent, makeEvent, parseEventLine, ReadyEventSchema } from './events/index.js';

describe('kernel command line', () => {
  it('splits on spaces and honours quotes', () => {
    expect(splitKernelCommandLine('BOOT_IMAGE=/boot/vmlinuz  quiet imagepe.plan="/a b" x="" \n')).toEqual(['BOOT_IMAGE=/boot/vmlinuz', 'quiet', 'imagepe.plan=/a b', 'x=']);
  });
  it('reads mode, plan and medium', () => {
    const c = parseAgentCommandLine('console=ttyS0 imagepe.mode=capture imagepe.plan=smb://10.0.2.4/qemu/plan.yaml imagepe.medium=IMAGEPE_1 imagepe.debug');
    expect(c).toEqual({ mode: 'capture', plan: 'smb://10.0.2.4/qemu/plan.yaml', medium: 'IMAGEPE_1', server: null, bootMac: null, params: { mode: 'capture', plan: 'smb://10.0.2.4/qemu/plan.yaml', medium: 'IMAGEPE_1', debug: '' } });
  });
  it('defaults to deploy and falls back to shell on an unknown mode', () => {
    expect(parseAgentCommandLine('quiet').mode).toBe('deploy');
    expect(parseAgentCommandLine('imagepe.mode=destroy').mode).toBe('shell');
    expect(parseAgentCommandLine('imagepe.plan=').plan).toBeNull();
  });
});

describe('disks from /sys/block', () => {
  const entries = [
    parseSysBlockEntry('vda', { size: '8388608\n', removable: '0\n', ro: '0\n' }),
    parseSysBlockEntry('sr0', { size: '144624\n', removable: '1\n', ro: '0\n', model: 'QEMU DVD-ROM    \n' }),
    parseSysBlockEntry('loop0', { size: '100\n' }),
    parseSysBlockEntry('ram0', { size: '100\n' }),
    parseSysBlockEntry('sr1', { size: '0\n', removable: '1\n' }),
    parseSysBlockEntry('nvme0n1', { size: '2048\n', removable: '0\n', model: 'Samsung SSD\n' }),
    parseSysBlockEntry('sda', { size: '1000\n', removable: '1\n', ro: '1\n' }),
  ];
  it('leaves out the boot medium, pseudo devices and empty drives', () => {
    expect(disksFromSysBlock(entries, '/dev/sr0')).toEqual([
      { path: '/dev/nvme0n1', size: 2048 * 512, model: 'Samsung SSD', removable: false, readOnly: false },
      { path: '/dev/sda', size: 512000, model: null, removable: true, readOnly: true },
      { path: '/dev/vda', size: 8388608 * 512, model: null, removable: false, readOnly: false },
    ]);
  });
  it('keeps the drive when the boot medium is unknown', () => {
    expect(disksFromSysBlock(entries, null).map((d) => d.path)).toContain('/dev/sr0');
  });
  it('reads the ISO volume id from a primary volume descriptor', () => {
    const pvd = Buffer.alloc(2048, 0);
    pvd[0] = 1;
    pvd.write('CD001', 1, 'ascii');
    pvd.write('IMAGEPE_ABC'.padEnd(32, ' '), 40, 'ascii');
    expect(isoVolumeId(pvd)).toBe('IMAGEPE_ABC');
    pvd[0] = 2;
    expect(isoVolumeId(pvd)).toBeUndefined();
  });
});

describe('events', () => {
  const ready = makeEvent(
    { type: 'ready', node: 'v20.1.0', kernel: '6.1.0', mode: 'deploy', plan: null, disks: [{ path: '/dev/vda', size: 1, model: null, removable: false, readOnly: false }], bootMedium: '/dev/sr0', uptimeSeconds: 5 },
    new Date(0),
  );
  it('starts every line with the version and the type', () => {
    expect(formatEvent(ready).startsWith('{"imagepe":1,"type":"ready","time":"1970-01-01T00:00:00.000Z",')).toBe(true);
    expect(ReadyEventSchema.parse(ready)).toEqual(ready);
  });
  it('finds events inside console noise and ignores everything else', () => {
    expect(parseEventLine(`\x1b[0m[  5.1] ${formatEvent(ready)}\r`)).toEqual(ready);
    expect(parseEventLine('imagepe: starting')).toBeUndefined();
    expect(parseEventLine('{"imagepe":1,"type":"ready"}')).toBeUndefined();
    expect(parseEventLine('{"imagepe":1,"type":"ready", broken')).toBeUndefined();
  });
});
