import { buildConfigJsonSchema, parseBuildConfig } from './config.js';
import { bootEntries, kernelArgs, volumeIdFor } from './build.js';
import { compareKernelVersions, newestKernel } from './kernel.js';
import { busyboxLinks } from './initramfs.js';

describe('build config', () => {
  it('has defaults so that an empty file builds', () => {
    const c = parseBuildConfig({});
    expect(c.menu.entries.map((e) => e.id)).toEqual(['deploy', 'capture', 'shell']);
    expect(c.menu.default).toBe('deploy');
    expect(c.console).toEqual({ serial: 'ttyS0', speed: 115200, screen: true });
    expect(c.tools).toEqual([]);
    expect(parseBuildConfig(null).volumeId).toBe('IMAGEPE');
  });

  it('names the field path in errors', () => {
    expect(() => parseBuildConfig({ menu: { entries: [{ id: 'x', title: 'X', mode: 'explode' }] } }, 'imagepe.yaml')).toThrow(/imagepe.yaml is not valid:[\s\S]*menu\.entries\.0\.mode/);
    expect(() => parseBuildConfig({ kernel: { pth: '/boot/x' } })).toThrow(/kernel/);
    expect(() => parseBuildConfig({ files: [{ source: 'a', target: 'relative' }] })).toThrow(/files\.0\.target: must be an absolute path/);
  });

  it('checks that the default entry exists', () => {
    expect(() => parseBuildConfig({ menu: { default: 'nope' } })).toThrow(/menu\.default: no menu entry has id "nope"/);
  });

  it('exports a JSON schema', () => {
    const schema = buildConfigJsonSchema() as { type: string; properties: Record<string, unknown> };
    expect(schema.type).toBe('object');
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['kernel', 'tools', 'modules', 'files', 'plan', 'menu', 'console']));
  });
});

describe('kernel command lines', () => {
  const c = parseBuildConfig({});
  it('puts the serial console last so /dev/console is the serial port', () => {
    const args = kernelArgs(c, 'deploy', ['x=1'], 'IMAGEPE_ABCD');
    expect(args.slice(0, 4)).toEqual(['console=tty0', 'console=ttyS0,115200n8', 'imagepe.mode=deploy', 'imagepe.medium=IMAGEPE_ABCD']);
    expect(args.at(-1)).toBe('x=1');
  });
  it('gives each menu entry its mode, and no medium for PXE', () => {
    const e = bootEntries(c, null);
    expect(e.map((x) => x.args.find((a) => a.startsWith('imagepe.mode=')))).toEqual(['imagepe.mode=deploy', 'imagepe.mode=capture', 'imagepe.mode=shell']);
    expect(e.some((x) => x.args.some((a) => a.startsWith('imagepe.medium=')))).toBe(false);
  });
  it('derives a valid volume id', () => {
    const v = volumeIdFor(parseBuildConfig({ volumeId: 'A_VERY_LONG_VOLUME_NAME_ABCDEFGH' }), 'deadbeef00');
    expect(v).toBe('A_VERY_LONG_VOLUME_NAME_DEADBEEF');
    expect(v.length).toBeLessThanOrEqual(32);
  });
});

describe('kernel choice', () => {
  it('orders releases numerically', () => {
    expect(compareKernelVersions('6.1.0-9-amd64', '6.1.0-56-amd64')).toBeLessThan(0);
    expect(compareKernelVersions('6.10.0-1-amd64', '6.9.0-1-amd64')).toBeGreaterThan(0);
    expect(newestKernel(['config-6.1.0-56-amd64', 'vmlinuz-6.1.0-9-amd64', 'vmlinuz-6.1.0-56-amd64', 'initrd.img-6.1.0-56-amd64'])).toBe('6.1.0-56-amd64');
    expect(newestKernel(['grub'])).toBeUndefined();
  });
});

describe('busybox links', () => {
  it('leaves out init, linuxrc and busybox itself and maps to /usr', () => {
    expect(busyboxLinks('bin/busybox\nbin/sh\nsbin/init\nlinuxrc\nsbin/modprobe\nusr/bin/[[\n')).toEqual(['usr/bin/sh', 'usr/sbin/modprobe', 'usr/bin/[[']);
  });
});

describe('menu countdown', () => {
  it('counts down only when the boot needs a choice', async () => {
    const { menuTimeout } = await import('./build.js');
    expect(menuTimeout(parseBuildConfig({}))).toBe(2);
    expect(menuTimeout(parseBuildConfig({ plan: { source: {} } }))).toBe(0);
    expect(menuTimeout(parseBuildConfig({ kernelArgs: ['quiet', 'imagepe.plan=smb://s/q/plan.yaml'] }))).toBe(0);
    expect(menuTimeout(parseBuildConfig({ menu: { entries: [{ id: 'deploy', title: 'd', mode: 'deploy', args: ['imagepe.plan=http://x/p.yaml'] }, { id: 'shell', title: 's', mode: 'shell' }] } }))).toBe(0);
    expect(menuTimeout(parseBuildConfig({ menu: { default: 'shell', entries: [{ id: 'deploy', title: 'd', mode: 'deploy', args: ['imagepe.plan=http://x/p.yaml'] }, { id: 'shell', title: 's', mode: 'shell' }] } }))).toBe(2);
    expect(menuTimeout(parseBuildConfig({ plan: { source: {} }, menu: { countdown: 'always', timeoutSeconds: 5 } }))).toBe(5);
  });
});
