import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { findSignedChain, peSignatureBytes, signedChainInstallHint, SIGNED_CHAIN_FILES } from './secure-boot.js';

/** A minimal PE32+ header with `count` data directories and a certificate table of `certBytes`. */
function peHeader(certBytes: number, count = 16, magic = 0x20b): Buffer {
  const b = Buffer.alloc(1024);
  b.writeUInt16LE(0x5a4d, 0);
  b.writeUInt32LE(0x80, 0x3c);
  b.writeUInt32LE(0x00004550, 0x80);
  const opt = 0x80 + 24;
  b.writeUInt16LE(magic, opt);
  const dirs = opt + (magic === 0x20b ? 112 : 96);
  b.writeUInt32LE(count, dirs - 4);
  b.writeUInt32LE(0x1000, dirs + 32);
  b.writeUInt32LE(certBytes, dirs + 36);
  return b;
}

describe('PE signatures', () => {
  it('reads the certificate table size of PE32+ and PE32 images', () => {
    expect(peSignatureBytes(peHeader(1472))).toBe(1472);
    expect(peSignatureBytes(peHeader(0))).toBe(0);
    expect(peSignatureBytes(peHeader(808, 16, 0x10b))).toBe(808);
    // Fewer than five directories: there is no certificate table at all.
    expect(peSignatureBytes(peHeader(1472, 4))).toBe(0);
  });
  it('refuses bytes that are not a PE image', () => {
    expect(() => peSignatureBytes(Buffer.from('\x7fELF and more bytes than that, a good many more than sixty-four of them.'))).toThrow(/MZ/);
    const noPe = peHeader(1);
    noPe.writeUInt32LE(0, 0x80);
    expect(() => peSignatureBytes(noPe)).toThrow(/PE signature/);
  });
});

describe('the signed chain on a root', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'imagepe-sb-'));
    for (const f of [SIGNED_CHAIN_FILES.shim, SIGNED_CHAIN_FILES.grubDisk]) {
      await mkdir(dirname(join(root, f)), { recursive: true });
      await writeFile(join(root, f), 'x');
    }
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('finds the parts that are there and names the packages of the rest', async () => {
    const r = await findSignedChain(root, ['shim', 'grubDisk', 'grubCd', 'mokManager']);
    expect(r.found).toEqual({ shim: join(root, SIGNED_CHAIN_FILES.shim), grubDisk: join(root, SIGNED_CHAIN_FILES.grubDisk) });
    expect(r.missing).toEqual(['grubCd', 'mokManager']);
    expect(signedChainInstallHint(r.missing)).toBe('apt-get install grub-efi-amd64-signed shim-helpers-amd64-signed');
  });
});
