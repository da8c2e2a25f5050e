import { expandOrigin, libraryClosure, peLocation, type ClosureHost } from './closure.js';
import type { ElfDynamicInfo } from './elf.js';

function fakeHost(files: Record<string, Partial<ElfDynamicInfo> | 'script'>): ClosureHost {
  return {
    exists: async (p) => p in files,
    isElf: async (p) => files[p] !== 'script',
    readElf: async (p) => {
      const f = files[p];
      if (!f || f === 'script') throw new Error(`no ELF ${p}`);
      return { interpreter: undefined, needed: [], soname: undefined, runpath: [], ...f };
    },
  };
}

describe('libraryClosure', () => {
  const host = fakeHost({
    '/usr/bin/tool': { interpreter: '/lib64/ld-linux-x86-64.so.2', needed: ['libfoo.so.1', 'libc.so.6'] },
    '/lib64/ld-linux-x86-64.so.2': {},
    '/lib/x86_64-linux-gnu/libc.so.6': { interpreter: undefined, needed: [] },
    '/usr/lib/x86_64-linux-gnu/libfoo.so.1': { needed: ['libbar.so.2', 'libc.so.6'] },
    '/opt/app/lib/libbar.so.2': { needed: [] },
    '/usr/lib/x86_64-linux-gnu/libbar.so.2': { needed: [] },
    '/usr/sbin/helper': 'script',
  });

  it('follows DT_NEEDED transitively and adds the interpreter', async () => {
    const c = await libraryClosure(['/usr/bin/tool'], host);
    expect(c.unresolved).toEqual([]);
    expect(c.files).toEqual([
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
      '/usr/bin/tool',
      '/usr/lib/x86_64-linux-gnu/libbar.so.2',
      '/usr/lib/x86_64-linux-gnu/libfoo.so.1',
    ]);
  });

  it('searches RUNPATH with $ORIGIN before the default directories', async () => {
    const h = fakeHost({
      '/opt/app/bin/app': { needed: ['libbar.so.2'], runpath: ['$ORIGIN/../lib'] },
      '/opt/app/lib/libbar.so.2': {},
      '/usr/lib/x86_64-linux-gnu/libbar.so.2': {},
    });
    const c = await libraryClosure(['/opt/app/bin/app'], h);
    expect(c.files).toContain('/opt/app/lib/libbar.so.2');
    expect(c.files).not.toContain('/usr/lib/x86_64-linux-gnu/libbar.so.2');
  });

  it('reports libraries it cannot find, naming who needs them', async () => {
    const h = fakeHost({ '/usr/bin/x': { needed: ['libgone.so.3'] } });
    const c = await libraryClosure(['/usr/bin/x'], h);
    expect(c.unresolved).toEqual([{ soname: 'libgone.so.3', neededBy: '/usr/bin/x' }]);
  });

  it('keeps scripts without reading them as ELF', async () => {
    const c = await libraryClosure(['/usr/sbin/helper'], host);
    expect(c.files).toEqual(['/usr/sbin/helper']);
  });
});

describe('peLocation and expandOrigin', () => {
  it('maps the merged-/usr top directories into usr/', () => {
    expect(peLocation('/lib64/ld-linux-x86-64.so.2')).toBe('usr/lib64/ld-linux-x86-64.so.2');
    expect(peLocation('/sbin/sfdisk')).toBe('usr/sbin/sfdisk');
    expect(peLocation('/bin/busybox')).toBe('usr/bin/busybox');
    expect(peLocation('/usr/bin/node')).toBe('usr/bin/node');
    expect(peLocation('/libexec/x')).toBe('libexec/x');
    expect(peLocation('/etc/x')).toBe('etc/x');
  });
  it('expands $ORIGIN and ${ORIGIN}', () => {
    expect(expandOrigin('$ORIGIN/../lib', '/opt/a/bin/x')).toBe('/opt/a/bin/../lib');
    expect(expandOrigin('${ORIGIN}/lib', '/opt/a/x')).toBe('/opt/a/lib');
  });
});

describe('core and payload', () => {
  it('moves host files to the payload and links them from the core', async () => {
    const { splitPayload, earlyModulePaths } = await import('./initramfs.js');
    const v = '6.1.0-1-amd64';
    const file = (source: string) => ({ kind: 'file' as const, source, size: 1, mode: 0o755 });
    const tree = new Map<string, import('./cpio.js').TreeEntry>([
      ['usr/bin/busybox', file('/bin/busybox')],
      ['usr/bin/sh', { kind: 'symlink', target: 'busybox' }],
      ['usr/bin/node', file('/usr/bin/node')],
      ['init', { kind: 'data', data: Buffer.from('x'), mode: 0o755 }],
      [`usr/lib/modules/${v}/modules.dep`, file('/s/modules.dep')],
      [`usr/lib/modules/${v}/kernel/drivers/scsi/sd_mod.ko`, file('/s/sd_mod.ko')],
      [`usr/lib/modules/${v}/kernel/lib/crc-t10dif.ko`, file('/s/crc-t10dif.ko')],
      [`usr/lib/modules/${v}/kernel/drivers/net/virtio_net.ko`, file('/s/virtio_net.ko')],
      [`usr/lib/modules/${v}/kernel/fs/ext4/ext4.ko`, file('/s/ext4.ko')],
      [`usr/lib/modules/${v}/kernel/fs/isofs/isofs.ko`, file('/s/isofs.ko')],
    ]);
    const modules = ['kernel/drivers/scsi/sd_mod.ko', 'kernel/lib/crc-t10dif.ko', 'kernel/drivers/net/virtio_net.ko', 'kernel/fs/ext4/ext4.ko', 'kernel/fs/isofs/isofs.ko'];
    const early = earlyModulePaths(modules, new Map([['kernel/drivers/scsi/sd_mod.ko', ['kernel/lib/crc-t10dif.ko']]]), v);
    const { core, payload } = splitPayload(tree, early);
    expect([...payload.keys()].sort()).toEqual([`usr/lib/modules/${v}/kernel/drivers/net/virtio_net.ko`, `usr/lib/modules/${v}/kernel/fs/ext4/ext4.ko`, 'usr/bin/node'].sort());
    expect(core.get('usr/bin/node')).toEqual({ kind: 'symlink', target: '/run/imagepe/pe/usr/bin/node' });
    expect(core.get('usr/bin/busybox')?.kind).toBe('file');
    expect(core.get(`usr/lib/modules/${v}/modules.dep`)?.kind).toBe('file');
    expect(core.get(`usr/lib/modules/${v}/kernel/fs/isofs/isofs.ko`)?.kind).toBe('file');
    expect(core.get(`usr/lib/modules/${v}/kernel/lib/crc-t10dif.ko`)?.kind).toBe('file');
    expect(core.size).toBe(tree.size);
  });

  it('a late module that an early one needs stays early', async () => {
    const { earlyModulePaths } = await import('./initramfs.js');
    const early = earlyModulePaths(['kernel/drivers/block/nbd.ko', 'kernel/net/core/x.ko'], new Map([['kernel/drivers/block/nbd.ko', ['kernel/net/core/x.ko']]]), 'v');
    expect(early.has('usr/lib/modules/v/kernel/net/core/x.ko')).toBe(true);
  });
});
