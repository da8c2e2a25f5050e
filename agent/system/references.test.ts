import { mkdir, readFile, readlink, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../test-support/tree.js';
import { mapVolumes } from '../deploy/identities.js';
import { bootProblems, type BootFacts } from './boot-check.js';
import { formatReference, parseReference, rewriteCmdline, rewriteTableColumn, rewriteWord, VolumeMap, type VolumeIdentity } from './references.js';
import { remapReferences, unitPathName } from './remap.js';

// The reference machine as its installer left it, and the machine it was deployed to.
const OLD = {
  root: { partition: 'root', number: 3, fsType: 'ext4', uuid: '11111111-1111-4111-8111-111111111111', label: 'rootfs', partuuid: 'AAAAAAAA-0000-4000-8000-000000000003', partlabel: 'root' },
  esp: { partition: 'ESP', number: 1, fsType: 'vfat', uuid: 'ABCD-1234', label: 'ESP', partuuid: 'AAAAAAAA-0000-4000-8000-000000000001', partlabel: 'ESP' },
  swap: { partition: 'swap', number: 4, fsType: 'swap', uuid: '22222222-2222-4222-8222-222222222222', partuuid: 'AAAAAAAA-0000-4000-8000-000000000004', partlabel: 'swap' },
} satisfies Record<string, VolumeIdentity>;
const NEW: VolumeIdentity[] = [
  { partition: 'ESP', number: 1, fsType: 'vfat', uuid: '9F00-0001', label: 'ESP', partuuid: 'BBBBBBBB-0000-4000-8000-000000000001', partlabel: 'ESP', mount: '/boot/efi' },
  { partition: 'root', number: 3, fsType: 'ext4', uuid: '33333333-3333-4333-8333-333333333333', partuuid: 'BBBBBBBB-0000-4000-8000-000000000003', partlabel: 'root', mount: '/' },
  { partition: 'swap', number: 4, fsType: 'swap', uuid: '44444444-4444-4444-8444-444444444444', partuuid: 'BBBBBBBB-0000-4000-8000-000000000004', partlabel: 'swap', mount: 'swap' },
];
const RECORDED_MOUNTS = new Map([['root', '/'], ['ESP', '/boot/efi'], ['swap', 'swap']]);
const map = () => mapVolumes(NEW, [OLD.root, OLD.esp, OLD.swap], RECORDED_MOUNTS, undefined);

describe('storage references', () => {
  it('reads every form a system names storage by, and writes each back as it was', () => {
    for (const text of ['UUID=abc', 'LABEL="my data"', 'PARTUUID=0a1b-02', 'PARTLABEL=root', '/dev/disk/by-uuid/abc', '/dev/disk/by-label/my\\x20data', '/dev/disk/by-partuuid/x', '/dev/disk/by-partlabel/EFI\\x20system', '/dev/sda2', '/dev/nvme0n1p3', '/dev/vdb1', '/dev/mmcblk0p2']) {
      const r = parseReference(text);
      expect(r).toBeDefined();
      expect(formatReference(r!)).toBe(text);
    }
    expect(parseReference('/dev/disk/by-label/my\\x20data')).toMatchObject({ kind: 'label', value: 'my data' });
    for (const other of ['proc', 'tmpfs', 'server:/export', '/dev/mapper/cryptroot', '/dev/mapper/luks-0fc63daf-8483-4772-8e79-3d69d8477de4', '/dev/mapper/control', '/dev/disk/by-id/x', '/dev/sda', 'none', 'UUID']) expect(parseReference(other)).toBeUndefined();
    // LVM's two paths of a logical volume; device-mapper doubles the hyphens inside each name.
    expect(parseReference('/dev/mapper/vg0-root')).toEqual({ kind: 'lvm', value: 'vg0/root', form: 'mapper' });
    expect(parseReference('/dev/mapper/debian--vg-swap_1')).toEqual({ kind: 'lvm', value: 'debian-vg/swap_1', form: 'mapper' });
    expect(parseReference('/dev/debian-vg/root')).toEqual({ kind: 'lvm', value: 'debian-vg/root', form: 'path' });
    expect(formatReference({ kind: 'lvm', value: 'my-vg/var-log', form: 'mapper' })).toBe('/dev/mapper/my--vg-var--log');
    expect(formatReference({ kind: 'lvm', value: 'my-vg/var-log', form: 'path' })).toBe('/dev/my-vg/var-log');
  });

  it('maps each kind of reference to the new volume, keeping its kind where the new volume has that name', () => {
    const m = map();
    expect(m.rewrite(`UUID=${OLD.root.uuid}`)).toBe(`UUID=${NEW[1]!.uuid}`);
    expect(m.rewrite(`/dev/disk/by-uuid/${OLD.swap.uuid}`)).toBe(`/dev/disk/by-uuid/${NEW[2]!.uuid}`);
    expect(m.rewrite(`PARTUUID=${OLD.esp.partuuid.toLowerCase()}`)).toBe(`PARTUUID=${NEW[0]!.partuuid}`);
    expect(m.rewrite('PARTLABEL=root')).toBeUndefined(); // the new root has the same GPT name: already right
    expect(m.rewrite('LABEL=ESP')).toBeUndefined();
    // The new root has no label: its old label becomes its UUID.
    expect(m.rewrite('LABEL=rootfs')).toBe(`UUID=${NEW[1]!.uuid}`);
    expect(m.rewrite('/dev/disk/by-label/rootfs')).toBe(`/dev/disk/by-uuid/${NEW[1]!.uuid}`);
    // Kernel names are not stable across machines: they become UUIDs.
    expect(m.rewrite('/dev/sda4')).toBe(`UUID=${NEW[2]!.uuid}`);
    expect(m.rewrite('UUID=99999999-9999-4999-8999-999999999999')).toBeUndefined();
    expect(rewriteWord(`resume=UUID=${OLD.swap.uuid}`, m)).toBe(`resume=UUID=${NEW[2]!.uuid}`);
    expect(rewriteWord(`root=/dev/sda3`, m)).toBe(`root=UUID=${NEW[1]!.uuid}`);
    expect(rewriteWord('quiet', m)).toBeUndefined();
  });

  it('maps a system captured without recorded identities through its fstab and the new layout mount points', () => {
    const fstab = `UUID=${OLD.root.uuid} / ext4 errors=remount-ro 0 1\nUUID=${OLD.esp.uuid} /boot/efi vfat umask=0077 0 1\n/dev/sda4 none swap sw 0 0\n`;
    const m = mapVolumes(NEW, [], new Map(), fstab);
    expect(m.rewrite(`UUID=${OLD.root.uuid}`)).toBe(`UUID=${NEW[1]!.uuid}`);
    expect(m.rewrite(`UUID=${OLD.esp.uuid}`)).toBe(`UUID=${NEW[0]!.uuid}`);
    expect(m.rewrite('/dev/sda4')).toBe(`UUID=${NEW[2]!.uuid}`);
  });

  it('rewrites fstab and crypttab columns and kernel command lines, keeping spacing and comments', () => {
    const m = map();
    const fstab = `# / was on /dev/sda3 during installation\nUUID=${OLD.root.uuid} /               ext4    errors=remount-ro 0       1\nproc /proc proc defaults 0 0\n`;
    const r = rewriteTableColumn(fstab, 0, m);
    expect(r.text).toBe(`# / was on /dev/sda3 during installation\nUUID=${NEW[1]!.uuid} /               ext4    errors=remount-ro 0       1\nproc /proc proc defaults 0 0\n`);
    expect(r.changes).toEqual([{ line: 2, from: `UUID=${OLD.root.uuid}`, to: `UUID=${NEW[1]!.uuid}` }]);
    const crypt = rewriteTableColumn(`cryptswap /dev/sda4 /dev/urandom swap,cipher=aes-xts-plain64\n`, 1, m);
    expect(crypt.text).toBe(`cryptswap UUID=${NEW[2]!.uuid} /dev/urandom swap,cipher=aes-xts-plain64\n`);
    expect(rewriteCmdline(`root=PARTUUID=${OLD.root.partuuid}  ro quiet resume=/dev/disk/by-uuid/${OLD.swap.uuid}\n`, m).text).toBe(`root=PARTUUID=${NEW[1]!.partuuid}  ro quiet resume=/dev/disk/by-uuid/${NEW[2]!.uuid}\n`);
  });

  it('maps a logical volume by its path when the new one has a VG/LV name, in the form the system wrote it, and by UUID otherwise', () => {
    const oldRoot: VolumeIdentity = { partition: 'vg0/root', lv: 'vg0/root', uuid: '11111111-1111-4111-8111-111111111111' };
    const newRoot: VolumeIdentity = { partition: 'sys-vg/root', lv: 'sys-vg/root', uuid: '22222222-2222-4222-8222-222222222222', mount: '/' };
    const newHome: VolumeIdentity = { partition: 'home', number: 5, uuid: '33333333-3333-4333-8333-333333333333', mount: '/home' };
    const map = new VolumeMap([newRoot, newHome]);
    map.add(oldRoot, newRoot);
    map.add({ partition: 'fstab /home', lv: 'vg0/home' }, newHome);
    const fstab = '/dev/mapper/vg0-root / ext4 errors=remount-ro 0 1\nUUID=11111111-1111-4111-8111-111111111111 /alt ext4 noauto 0 0\n/dev/vg0/home /home ext4 defaults 0 2\n';
    expect(rewriteTableColumn(fstab, 0, map).text).toBe(
      '/dev/mapper/sys--vg-root / ext4 errors=remount-ro 0 1\nUUID=22222222-2222-4222-8222-222222222222 /alt ext4 noauto 0 0\nUUID=33333333-3333-4333-8333-333333333333 /home ext4 defaults 0 2\n',
    );
    expect(rewriteWord('root=/dev/mapper/vg0-root', map)).toBe('root=/dev/mapper/sys--vg-root');
    // A system deployed with the same names needs nothing rewritten.
    expect(new VolumeMap([{ ...newRoot, lv: 'vg0/root' }]).rewrite('/dev/mapper/vg0-root')).toBeUndefined();
  });

  it('escapes unit names as systemd-escape --path does', () => {
    expect(unitPathName('/dev/disk/by-uuid/0a1b-2c3d')).toBe('dev-disk-by\\x2duuid-0a1b\\x2d2c3d');
    expect(unitPathName('/.hidden/x')).toBe('\\x2ehidden-x');
    expect(unitPathName('/')).toBe('-');
  });
});

describe('remapping a system tree', () => {
  let root: string;
  beforeEach(async () => {
    root = await tempDir('remap');
  });
  afterEach(async () => {
    await removeDir(root);
  });

  it('rewrites every kind of file that names storage, renames a swap unit with its links, and leaves what it does not know', async () => {
    const files: Record<string, string> = {
      'etc/fstab': `UUID=${OLD.root.uuid} / ext4 errors=remount-ro 0 1\nLABEL=ESP /boot/efi vfat umask=0077 0 1\nUUID=${OLD.swap.uuid} none swap sw 0 0\nnas:/srv /srv nfs defaults 0 0\nUUID=0000-0000 /mnt/usb vfat noauto 0 0\n`,
      'etc/crypttab': `data PARTUUID=${OLD.root.partuuid} none luks\n`,
      'etc/initramfs-tools/conf.d/resume': `RESUME=UUID=${OLD.swap.uuid}\n`,
      'etc/default/grub': `GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet resume=UUID=${OLD.swap.uuid}"\nGRUB_CMDLINE_LINUX='root=/dev/sda3 console=ttyS0'\n`,
      'etc/default/grub.d/50-cloud.cfg': `GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX resume=/dev/disk/by-partlabel/swap"\n`,
      'etc/dracut.conf.d/resume.conf': `add_device+=" /dev/disk/by-uuid/${OLD.swap.uuid} "\n`,
      'etc/kernel/cmdline': `root=UUID=${OLD.root.uuid} rw\n`,
      'etc/systemd/system/boot-efi.mount': `[Mount]\nWhat=/dev/disk/by-uuid/${OLD.esp.uuid}\nWhere=/boot/efi\nType=vfat\n`,
      [`etc/systemd/system/${unitPathName(`/dev/disk/by-uuid/${OLD.swap.uuid}`)}.swap`]: `[Swap]\nWhat=/dev/disk/by-uuid/${OLD.swap.uuid}\n`,
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), text);
    }
    const oldSwapUnit = `${unitPathName(`/dev/disk/by-uuid/${OLD.swap.uuid}`)}.swap`;
    const newSwapUnit = `${unitPathName(`/dev/disk/by-uuid/${NEW[2]!.uuid}`)}.swap`;
    await mkdir(join(root, 'etc/systemd/system/swap.target.wants'), { recursive: true });
    await symlink(`/etc/systemd/system/${oldSwapUnit}`, join(root, 'etc/systemd/system/swap.target.wants', oldSwapUnit));

    const changes = await remapReferences(root, map());
    const read = (p: string) => readFile(join(root, p), 'utf8');
    expect(await read('etc/fstab')).toBe(`UUID=${NEW[1]!.uuid} / ext4 errors=remount-ro 0 1\nLABEL=ESP /boot/efi vfat umask=0077 0 1\nUUID=${NEW[2]!.uuid} none swap sw 0 0\nnas:/srv /srv nfs defaults 0 0\nUUID=0000-0000 /mnt/usb vfat noauto 0 0\n`);
    expect(await read('etc/crypttab')).toBe(`data PARTUUID=${NEW[1]!.partuuid} none luks\n`);
    expect(await read('etc/initramfs-tools/conf.d/resume')).toBe(`RESUME="UUID=${NEW[2]!.uuid}"\n`);
    expect(await read('etc/default/grub')).toBe(`GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet resume=UUID=${NEW[2]!.uuid}"\nGRUB_CMDLINE_LINUX="root=UUID=${NEW[1]!.uuid} console=ttyS0"\n`);
    // The partition name is the same on the new disk: nothing to change there.
    expect(await read('etc/default/grub.d/50-cloud.cfg')).toBe(files['etc/default/grub.d/50-cloud.cfg']);
    expect(await read('etc/dracut.conf.d/resume.conf')).toBe(`add_device+=" /dev/disk/by-uuid/${NEW[2]!.uuid} "\n`);
    expect(await read('etc/kernel/cmdline')).toBe(`root=UUID=${NEW[1]!.uuid} rw\n`);
    expect(await read('etc/systemd/system/boot-efi.mount')).toContain(`What=/dev/disk/by-uuid/${NEW[0]!.uuid}\n`);
    expect(await readdir(join(root, 'etc/systemd/system'))).toContain(newSwapUnit);
    expect(await readdir(join(root, 'etc/systemd/system'))).not.toContain(oldSwapUnit);
    expect(await read(`etc/systemd/system/${newSwapUnit}`)).toBe(`[Swap]\nWhat=/dev/disk/by-uuid/${NEW[2]!.uuid}\n`);
    expect(await readlink(join(root, 'etc/systemd/system/swap.target.wants', newSwapUnit))).toBe(`/etc/systemd/system/${newSwapUnit}`);
    expect(changes.map((c) => `${c.file}${c.line ? `:${c.line}` : ''}`)).toEqual(
      expect.arrayContaining(['/etc/fstab:1', '/etc/fstab:3', '/etc/crypttab:1', '/etc/initramfs-tools/conf.d/resume:1', '/etc/default/grub:2', '/etc/default/grub:3', '/etc/dracut.conf.d/resume.conf:1', '/etc/kernel/cmdline', '/etc/systemd/system/boot-efi.mount:2']),
    );

    // What is left judges the system bootable: every mount and boot argument names something here.
    const facts: BootFacts = { volumes: NEW, fstab: await read('etc/fstab'), crypttab: undefined, bootFileExists: () => true, initramfsResume: [{ initrd: '/boot/initrd.img-6.1', value: `UUID=${NEW[2]!.uuid}` }] };
    expect(bootProblems(facts)).toEqual([]);
  });

  it('resolves an image symlink inside the system, never on this machine', async () => {
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(join(root, 'var/fstab'), { recursive: true });
    await writeFile(join(root, 'var/fstab/fstab'), `UUID=${OLD.root.uuid} / ext4 defaults 0 1\n`);
    await symlink('/var/fstab/fstab', join(root, 'etc/fstab'));
    await remapReferences(root, map());
    expect(await readFile(join(root, 'var/fstab/fstab'), 'utf8')).toBe(`UUID=${NEW[1]!.uuid} / ext4 defaults 0 1\n`);
  });
});

describe('boot readiness', () => {
  const base: BootFacts = { volumes: NEW, bootFileExists: () => true, initramfsResume: [] };

  it('names each file, line and missing thing that would stop or degrade the boot', () => {
    const problems = bootProblems({
      ...base,
      fstab: `UUID=${NEW[1]!.uuid} / ext4 defaults 0 1\nUUID=${OLD.esp.uuid} /boot/efi vfat umask=0077 0 1\n/dev/sda4 none swap sw 0 0\nUUID=${OLD.esp.uuid} /mnt/maybe vfat nofail 0 0\ntmpfs /tmp tmpfs defaults 0 0\n`,
      crypttab: `home UUID=${OLD.root.uuid} none luks\n`,
      grubCfg: { path: '/boot/grub/grub.cfg', text: `menuentry 'Debian' {\n  linux /boot/vmlinuz-6.1 root=UUID=${OLD.root.uuid} ro resume=UUID=${NEW[2]!.uuid}\n  initrd /boot/initrd.img-6.1\n}\n` },
      bootFileExists: (p) => p === '/boot/vmlinuz-6.1',
      initramfsResume: [{ initrd: '/boot/initrd.img-6.1', value: `UUID=${OLD.swap.uuid}` }],
      ssh: { server: true, wanted: true, hostKeys: [] },
    });
    expect(problems).toEqual([
      `/etc/fstab line 2: UUID=${OLD.esp.uuid} (mounted on /boot/efi) is no filesystem on this disk`,
      '/etc/fstab line 3: /dev/sda4 (swap) is a kernel device name, which differs from machine to machine; name it by UUID=',
      `/etc/crypttab line 1: UUID=${OLD.root.uuid} (the encrypted volume home) is no filesystem on this disk`,
      `/boot/grub/grub.cfg line 2: root=UUID=${OLD.root.uuid} (root=) is no filesystem on this disk`.replace('root=UUID', 'UUID'),
      '/boot/grub/grub.cfg line 2: the initramfs /boot/initrd.img-6.1 is not on the boot filesystem',
      `/boot/initrd.img-6.1 (RESUME= built in): UUID=${OLD.swap.uuid} (the resume device) is no filesystem on this disk`,
      '/etc/ssh: the SSH server has no host keys, so ssh.service does not start',
    ]);
  });

  it('finds nothing wrong with a system whose every reference is here', () => {
    expect(bootProblems({ ...base, fstab: `PARTLABEL=root / ext4 defaults 0 1\nLABEL=ESP /boot/efi vfat defaults 0 1\n`, ssh: { server: true, wanted: true, hostKeys: ['ssh_host_ed25519_key'] } })).toEqual([]);
    expect(bootProblems({ ...base, grubCfg: { path: '/boot/grub/grub.cfg', text: 'set timeout=1\n' } })).toEqual(['/boot/grub/grub.cfg: no boot entry (no linux line)']);
  });

  it('accepts a root named by its LVM path, and refuses a root on LVM in a system without lvm2', () => {
    const lv: VolumeIdentity = { partition: 'vg0/root', lv: 'vg0/root', uuid: '44444444-4444-4444-8444-444444444444', mount: '/' };
    const grubCfg = { path: '/boot/grub/grub.cfg', text: "menuentry 'Debian' {\n  linux /vmlinuz-6.1 root=/dev/mapper/vg0-root ro\n  initrd /initrd.img-6.1\n}\n" };
    const facts: BootFacts = { ...base, volumes: [...NEW, lv], fstab: '/dev/vg0/root / ext4 defaults 0 1\n', grubCfg };
    expect(bootProblems({ ...facts, lvmRoot: { volume: 'vg0/root', tools: true } })).toEqual([]);
    expect(bootProblems({ ...facts, lvmRoot: { volume: 'vg0/root', tools: false } })).toEqual([
      'the root is on logical volume vg0/root, but the system has no lvm2 (/sbin/lvm), so its initramfs cannot activate the volume group; install lvm2 in the image, or deploy the root to a partition',
    ]);
    expect(bootProblems({ ...facts, volumes: NEW })).toEqual([
      '/etc/fstab line 1: /dev/vg0/root (mounted on /) is no filesystem on this disk',
      '/boot/grub/grub.cfg line 2: /dev/mapper/vg0-root (root=) is no filesystem on this disk',
    ]);
  });
});

describe('the volume map', () => {
  it('says nothing about a reference that already names a new volume (filesystems made with the old identities)', () => {
    const m = new VolumeMap(NEW);
    m.add(OLD.root, NEW[1]!);
    expect(m.rewrite(`UUID=${NEW[1]!.uuid}`)).toBeUndefined();
    expect(m.resolve(parseReference(`UUID=${NEW[1]!.uuid}`)!)).toBe(NEW[1]);
  });
});
