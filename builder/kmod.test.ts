import { aliasMatches, buildModuleIndex, moduleName, parseModulesAlias, parseModulesDep, parseModulesSoftdep, selectModules } from './kmod.js';

const DEP = `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/net/net_failover.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko
kernel/drivers/ata/libata.ko:
kernel/drivers/usb/storage/usb-storage.ko:
`;

describe('modules index parsing', () => {
  it('names modules like modprobe', () => {
    expect(moduleName('kernel/drivers/usb/storage/usb-storage.ko')).toBe('usb_storage');
    expect(moduleName('kernel/fs/ext4/ext4.ko.xz')).toBe('ext4');
    expect(moduleName('kernel/x/y.ko.zst')).toBe('y');
  });

  it('parses modules.dep', () => {
    const d = parseModulesDep(DEP);
    expect(d.get('kernel/fs/ext4/ext4.ko')).toEqual(['kernel/lib/crc16.ko', 'kernel/fs/mbcache.ko', 'kernel/fs/jbd2/jbd2.ko']);
    expect(d.get('kernel/lib/crc16.ko')).toEqual([]);
    expect(d.size).toBe(12);
  });

  it('parses modules.alias and softdep', () => {
    expect(parseModulesAlias('# Aliases\nalias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_net\nalias fs-ext4 ext4\n')).toEqual([
      { pattern: 'pci:v00001AF4d00001000sv*sd*bc*sc*i*', module: 'virtio_net' },
      { pattern: 'fs-ext4', module: 'ext4' },
    ]);
    expect(parseModulesSoftdep('# x\nsoftdep ext4 pre: crc32c_generic\nsoftdep virtio_net pre: a post: b-c\n').get('virtio_net')).toEqual(['a', 'b_c']);
  });

  it('matches aliases with fnmatch wildcards and classes', () => {
    expect(aliasMatches('pci:v00001AF4d00001000sv*sd*bc*sc*i*', 'pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00')).toBe(true);
    expect(aliasMatches('pci:v00001AF4d00001000sv*sd*bc*sc*i*', 'pci:v00008086d00001000sv00001AF4sd00000001bc02sc00i00')).toBe(false);
    expect(aliasMatches('usb:v*p*d*dc*dsc*dp*ic08isc0[1-6]ip50in*', 'usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00')).toBe(true);
    expect(aliasMatches('a?c', 'abc')).toBe(true);
    expect(aliasMatches('a.c', 'abc')).toBe(false);
  });
});

describe('selectModules', () => {
  const index = buildModuleIndex(DEP, 'softdep ext4 pre: crc32c_generic\n', 'kernel/drivers/block/loop.ko\n');

  it('takes the modules.dep closure and soft dependencies', () => {
    const s = selectModules(index, ['ext4']);
    expect(s.paths).toEqual(['kernel/crypto/crc32c_generic.ko', 'kernel/fs/ext4/ext4.ko', 'kernel/fs/jbd2/jbd2.ko', 'kernel/fs/mbcache.ko', 'kernel/lib/crc16.ko']);
    expect(s.missing).toEqual([]);
  });

  it('accepts directories, dashes in names, and reports built-in and missing modules', () => {
    const s = selectModules(index, ['kernel/drivers/ata/', 'usb-storage', 'loop', 'nonexistent', 'kernel/drivers/none/']);
    expect(s.paths).toEqual(['kernel/drivers/ata/ahci.ko', 'kernel/drivers/ata/libahci.ko', 'kernel/drivers/ata/libata.ko', 'kernel/drivers/usb/storage/usb-storage.ko']);
    expect(s.builtin).toEqual(['loop']);
    expect(s.missing).toEqual(['nonexistent', 'kernel/drivers/none/']);
  });

  it('does not loop on shared dependencies', () => {
    expect(selectModules(index, ['virtio_net', 'net_failover']).paths).toEqual(['kernel/drivers/net/net_failover.ko', 'kernel/drivers/net/virtio_net.ko', 'kernel/net/core/failover.ko']);
  });
});
