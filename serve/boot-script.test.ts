import { normalizeBaseUrl, rewriteGrubConfig, rewriteIpxeScript } from './boot-script.js';
import { macFileName, normalizeMac } from './mac.js';

describe('boot menus as the server hands them out', () => {
  const ipxe = ['#!ipxe', 'menu imagepe', 'item deploy imagepe: deploy', ':deploy', 'kernel vmlinuz initrd=initrd.img console=ttyS0 imagepe.mode=deploy', 'initrd initrd.img', 'boot', ':shell', '  kernel vmlinuz imagepe.mode=shell imagepe.server=http://old/ BOOTIF=01-aa-bb-cc-dd-ee-ff', ''].join('\n');

  it('adds imagepe.server and iPXE\'s boot MAC to every kernel line, and nothing else', () => {
    const out = rewriteIpxeScript(ipxe, 'http://10.0.0.1:8080');
    expect(out.split('\n')).toEqual([
      '#!ipxe',
      'menu imagepe',
      'item deploy imagepe: deploy',
      ':deploy',
      'kernel vmlinuz initrd=initrd.img console=ttyS0 imagepe.mode=deploy imagepe.server=http://10.0.0.1:8080/ BOOTIF=01-${netX/mac:hexhyp}',
      'initrd initrd.img',
      'boot',
      ':shell',
      // An imagepe.server already there is replaced; a BOOTIF already there is kept.
      '  kernel vmlinuz imagepe.mode=shell BOOTIF=01-aa-bb-cc-dd-ee-ff imagepe.server=http://10.0.0.1:8080/',
      '',
    ]);
  });

  it('adds imagepe.server to the linux lines of a GRUB menu', () => {
    const grub = "menuentry 'x' {\n  linux $imagepe_dir/vmlinuz imagepe.mode=deploy\n  initrd $imagepe_dir/initrd.img\n}\n";
    expect(rewriteGrubConfig(grub, 'http://10.0.0.1:8080/')).toBe("menuentry 'x' {\n  linux $imagepe_dir/vmlinuz imagepe.mode=deploy imagepe.server=http://10.0.0.1:8080/\n  initrd $imagepe_dir/initrd.img\n}\n");
  });

  it('writes base URLs with a trailing slash', () => {
    expect(normalizeBaseUrl('http://a:1')).toBe('http://a:1/');
    expect(normalizeBaseUrl('http://a:1/x/')).toBe('http://a:1/x/');
  });
});

describe('MAC addresses', () => {
  it('reads both spellings, in either case, and writes file names with hyphens', () => {
    expect(normalizeMac('52-54-00-AB-cd-01')).toBe('52:54:00:ab:cd:01');
    expect(normalizeMac('52:54:00:ab:cd:01')).toBe('52:54:00:ab:cd:01');
    expect(normalizeMac('52:54:00:ab:cd')).toBeUndefined();
    expect(normalizeMac('../../etc/x')).toBeUndefined();
    expect(macFileName('52:54:00:AB:cd:01')).toBe('52-54-00-ab-cd-01');
  });
});
