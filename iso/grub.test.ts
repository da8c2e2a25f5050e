import { earlyGrubConfig, fillTemplate, grubQuote, renderGrubMenu, renderGrubNetConfig, renderIpxeScript } from './grub.js';
import { isoDate, parseBootReport, xorrisoArgs } from './xorriso.js';
import { espFolders, espSizeFor } from './esp.js';

const templates = {
  grubCfg: 'set timeout=@TIMEOUT@\nset default=@DEFAULT@\n@SERIAL@\n@MENU_KEY@\nsearch --no-floppy --set=root --file /@MARKER@\n@ENTRIES@\n',
  menuEntry: "menuentry '@TITLE@' --id @ID@ {\n  linux /boot/vmlinuz @ARGS@\n  initrd /boot/initrd.img\n}\n",
};
const entries = [
  { id: 'deploy', title: 'imagepe: deploy', args: ['console=ttyS0,115200n8', 'imagepe.mode=deploy'] },
  { id: 'shell', title: "it's a shell", args: ['imagepe.mode=shell', 'imagepe.plan=/a b'] },
];

describe('boot menus', () => {
  it('fills templates and refuses unknown placeholders', () => {
    expect(fillTemplate('a @X@ b', { X: '1' })).toBe('a 1 b');
    expect(() => fillTemplate('@Y@', {})).toThrow(/@Y@/);
  });

  it('renders the GRUB menu with serial console, marker and entries', () => {
    const cfg = renderGrubMenu({ entries, defaultId: 'deploy', timeoutSeconds: 2, serial: { unit: 0, speed: 115200 }, marker: 'imagepe-x' }, templates);
    expect(cfg).toContain('set timeout=2');
    expect(cfg).not.toContain('keystatus');
    // No countdown: nothing is drawn, and Shift held brings the menu back.
    expect(renderGrubMenu({ entries, defaultId: 'deploy', timeoutSeconds: 0, serial: null, marker: 'm' }, templates)).toContain('set timeout=0\n');
    expect(renderGrubMenu({ entries, defaultId: 'deploy', timeoutSeconds: 0, serial: null, marker: 'm' }, templates)).toContain('if keystatus --shift; then set timeout=-1; fi');
    expect(cfg).toContain('set default=deploy');
    expect(cfg).toContain('serial --unit=0 --speed=115200');
    expect(cfg).toContain('search --no-floppy --set=root --file /imagepe-x');
    expect(cfg).toContain("menuentry 'imagepe: deploy' --id deploy {\n  linux /boot/vmlinuz console=ttyS0,115200n8 imagepe.mode=deploy\n");
    expect(cfg).toContain("menuentry 'its a shell' --id shell");
    expect(cfg).toContain("imagepe.plan=/a b'");
    expect(cfg).not.toMatch(/@[A-Z]+@/);
  });

  it('quotes for GRUB', () => {
    expect(grubQuote("a'b")).toBe("'a'\\''b'");
  });

  it('renders the PXE scripts', () => {
    const template = '#!ipxe\n@ITEMS@\n@MENU@\n@ENTRIES@';
    const ipxe = renderIpxeScript({ entries, defaultId: 'deploy', timeoutSeconds: 3 }, template);
    expect(ipxe).toContain('choose --default deploy --timeout 3000 target && goto ${target}');
    // iPXE's --timeout 0 would wait forever: no countdown goes straight to the default.
    const direct = renderIpxeScript({ entries, defaultId: 'deploy', timeoutSeconds: 0 }, template);
    expect(direct).toContain('\ngoto deploy\n');
    expect(direct).not.toContain('choose');
    expect(ipxe).toContain(':deploy\nkernel vmlinuz initrd=initrd.img console=ttyS0,115200n8 imagepe.mode=deploy\ninitrd initrd.img\nboot');
    const net = renderGrubNetConfig({ entries, defaultId: 'shell', timeoutSeconds: 5, serial: null, marker: 'm' });
    expect(net).toContain('linux $imagepe_dir/vmlinuz imagepe.mode=shell');
    expect(net).not.toContain('serial');
  });

  it('finds the medium by its marker in the embedded config', () => {
    expect(earlyGrubConfig('imagepe-abc')).toContain('search --no-floppy --set=root --file /imagepe-abc');
  });
});

describe('xorriso', () => {
  it('formats dates in UTC', () => {
    expect(isoDate(0)).toBe('1970010100000000');
    expect(isoDate(1_700_000_000)).toBe('2023111422132000');
  });

  it('makes a hybrid ISO with both El Torito entries and a reproducible GPT', () => {
    const a = xorrisoArgs({ tree: '/t', output: '/o.iso', volumeId: 'V', biosImage: 'boot/grub/bios.img', espImage: '/e.img', hybridMbr: '/h.img', sourceDateEpoch: 0 });
    const s = a.join(' ');
    expect(s).toContain('-b boot/grub/bios.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info');
    expect(s).toContain('-eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot');
    expect(s).toContain('-append_partition 2 0xef /e.img -appended_part_as_gpt');
    expect(s).toContain('--gpt_disk_guid modification-date');
    expect(s).toContain('--modification-date=1970010100000000');
    expect(a.at(-1)).toBe('/t');
  });

  it('parses the boot report', () => {
    const r = parseBootReport(`Volume id    : 'IMAGEPE_81C63A72'
El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4          50
El Torito boot img :   2  UEFI  y   none  0x0000  0x00   4096       34966
El Torito img path :   1  /boot/grub/bios.img
System area summary: MBR protective-msdos-label grub2-mbr cyl-align-off GPT
`);
    expect(r.volumeId).toBe('IMAGEPE_81C63A72');
    expect(r.entries).toEqual([
      { index: 1, platform: 'BIOS', lba: 50, path: '/boot/grub/bios.img' },
      { index: 2, platform: 'UEFI', lba: 34966, path: undefined },
    ]);
    expect(r.systemArea).toContain('GPT');
  });

  it('sizes the ESP in whole MiB with room to spare', () => {
    expect(espSizeFor(500_000)).toBe(2 * 1024 * 1024);
    expect(espSizeFor(3_000_000) % (1024 * 1024)).toBe(0);
    expect(espSizeFor(3_000_000)).toBeGreaterThan(3_000_000);
  });
});

describe('the signed chain on the ISO and in the PXE bundle', () => {
  it('makes every ESP folder, parents first', () => {
    expect(espFolders([{ target: 'EFI/BOOT/BOOTX64.EFI', source: '/s' }, { target: 'EFI/BOOT/grubx64.efi', source: '/g' }, { target: '/boot/grub/grub.cfg', data: 'x' }])).toEqual(['EFI', 'boot', 'EFI/BOOT', 'boot/grub']);
    expect(espFolders([{ target: 'BOOTX64.EFI', data: '' }])).toEqual([]);
  });
  it('the signed network GRUB finds vmlinuz beside its prefix folder, not beside its memdisk config', () => {
    const menu = { entries, defaultId: 'deploy', timeoutSeconds: 0, serial: null, marker: 'm' };
    expect(renderGrubNetConfig(menu, 'prefix-parent')).toContain('regexp --set=1:imagepe_dir "^(.*)/[^/]*$" "$prefix"');
    expect(renderGrubNetConfig(menu)).toContain('"$config_file"');
    expect(renderGrubNetConfig(menu, 'prefix-parent')).toContain('linux $imagepe_dir/vmlinuz');
  });
});

