import { chooseKernel, compareVersions, kernelArgsFromDefaultGrub, renderEmbeddedCfg, renderGrubCfg } from './grubcfg.js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SIGNED_CHAIN_FILES } from '../../core/index.js';
import { chooseSignedChain, renderSignedStub, signedChainLayout } from './signed.js';

describe('grub.cfg', () => {
  const entry = { kernel: '/boot/vmlinuz-6.1.0-56-amd64', initrd: '/boot/initrd.img-6.1.0-56-amd64', bootUuid: 'b-uuid', root: 'UUID=r-uuid', bootFsModule: 'ext2' as const, title: "imagepe: pc's", kernelArgs: 'quiet' };

  it('boots the kernel with root=UUID= on serial and screen', () => {
    const cfg = renderGrubCfg(entry);
    expect(cfg).toContain('search --no-floppy --fs-uuid --set=root b-uuid\n');
    expect(cfg).toContain('  linux /boot/vmlinuz-6.1.0-56-amd64 root=UUID=r-uuid rw console=tty0 console=ttyS0,115200 quiet\n');
    expect(cfg).toContain('  initrd /boot/initrd.img-6.1.0-56-amd64\n');
    expect(cfg).toContain('insmod ext2\n');
    expect(cfg).toContain("menuentry 'imagepe: pcs' {");
    expect(cfg).toContain('terminal_output console serial');
  });

  it('leaves out initrd when there is none', () => {
    const { initrd: _i, ...noInitrd } = entry;
    expect(renderGrubCfg({ ...noInitrd, kernelArgs: '' })).not.toContain('initrd');
    expect(renderGrubCfg({ ...noInitrd, kernelArgs: '' })).toMatch(/console=ttyS0,115200\n/);
    expect(renderGrubCfg({ ...noInitrd, root: 'PARTUUID=abcd', kernelArgs: '' })).toContain('linux /boot/vmlinuz-6.1.0-56-amd64 root=PARTUUID=abcd rootwait rw console=tty0');
  });

  it('embeds a config that finds the boot filesystem by UUID', () => {
    expect(renderEmbeddedCfg('b-uuid', '/boot/grub/grub.cfg')).toBe('search --no-floppy --fs-uuid --set=root b-uuid\nconfigfile ($root)/boot/grub/grub.cfg\n');
  });
});

describe('finding the kernel', () => {
  it('takes the newest kernel and its initrd', () => {
    expect(chooseKernel(['vmlinuz-6.9.0', 'vmlinuz-6.10.1', 'initrd.img-6.10.1', 'initrd.img-6.9.0', 'config-6.10.1', 'grub'])).toEqual({ kernel: 'vmlinuz-6.10.1', version: '6.10.1', initrd: 'initrd.img-6.10.1' });
    expect(chooseKernel(['vmlinuz-5.14.0-362.el9.x86_64', 'initramfs-5.14.0-362.el9.x86_64.img'])?.initrd).toBe('initramfs-5.14.0-362.el9.x86_64.img');
  });

  it('takes a bare vmlinuz, with no initrd when there is none', () => {
    expect(chooseKernel(['vmlinuz', 'System.map'])).toEqual({ kernel: 'vmlinuz', version: '' });
    expect(chooseKernel(['config', 'grub'])).toBeUndefined();
  });

  it('orders versions numerically', () => {
    expect(compareVersions('6.10', '6.9')).toBeGreaterThan(0);
    expect(compareVersions('6.1.0-56', '6.1.0-56')).toBe(0);
    expect(compareVersions('6.1', '6.1.0')).toBeLessThan(0);
  });

  it('reads the kernel arguments of /etc/default/grub', () => {
    expect(kernelArgsFromDefaultGrub('GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\nGRUB_CMDLINE_LINUX="net.ifnames=0"\n')).toBe('net.ifnames=0 quiet splash');
    expect(kernelArgsFromDefaultGrub('# nothing\n')).toBe('');
  });
});

describe('the signed chain on a deployed ESP', () => {
  it('hands the signed GRUB over to the system grub.cfg by UUID, as Debian grub-install does', () => {
    expect(renderSignedStub('1234-abcd', '/boot/grub')).toBe("search.fs_uuid 1234-abcd root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n");
  });
  it('puts shim at the removable path with the signed GRUB beside it under the name shim loads', () => {
    expect(signedChainLayout({ shim: '/s', grub: '/g', mokManager: '/m', from: 'pe' })).toEqual([
      { source: '/s', target: '::/EFI/BOOT/BOOTX64.EFI' },
      { source: '/g', target: '::/EFI/BOOT/grubx64.efi' },
      { source: '/m', target: '::/EFI/BOOT/mmx64.efi' },
    ]);
  });
  it("prefers the image's own chain to the PE's, and has none when neither has shim and GRUB", async () => {
    const image = await mkdtemp(join(tmpdir(), 'imagepe-img-'));
    const pe = await mkdtemp(join(tmpdir(), 'imagepe-pe-'));
    try {
      const put = async (root: string, f: string) => {
        await mkdir(dirname(join(root, f)), { recursive: true });
        await writeFile(join(root, f), 'x');
      };
      expect(await chooseSignedChain(image, pe)).toBeUndefined();
      await put(pe, SIGNED_CHAIN_FILES.shim);
      await put(pe, SIGNED_CHAIN_FILES.grubDisk);
      await put(image, SIGNED_CHAIN_FILES.shim);
      expect(await chooseSignedChain(image, pe)).toEqual({ shim: join(pe, SIGNED_CHAIN_FILES.shim), grub: join(pe, SIGNED_CHAIN_FILES.grubDisk), from: 'pe' });
      await put(image, SIGNED_CHAIN_FILES.grubDisk);
      expect((await chooseSignedChain(image, pe))?.from).toBe('image');
    } finally {
      await rm(image, { recursive: true, force: true });
      await rm(pe, { recursive: true, force: true });
    }
  });
});
