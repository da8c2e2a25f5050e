import { parsePipableBlobHeader, parseWimHeader, WIM_HEADER_SIZE } from './wim-header.js';

interface Fields {
  magic?: string;
  headerSize?: number;
  flags?: number;
  totalParts?: number;
  integrityOffset?: number;
}

/** A header laid out as wimlib's struct wim_header_disk, with distinct values in every field. */
function header(f: Fields = {}): Uint8Array {
  const bytes = new Uint8Array(WIM_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  bytes.set(Buffer.from(f.magic ?? 'MSWIM\0\0\0', 'latin1'), 0);
  view.setUint32(8, f.headerSize ?? WIM_HEADER_SIZE, true);
  view.setUint32(12, 0x10d00, true);
  view.setUint32(16, f.flags ?? (0x2 | 0x80 | 0x40000), true);
  view.setUint32(20, 32768, true);
  for (let i = 0; i < 16; i++) bytes[24 + i] = 0xa0 + i;
  view.setUint16(40, 1, true);
  view.setUint16(42, f.totalParts ?? 1, true);
  view.setUint32(44, 3, true);
  const reshdr = (at: number, stored: number, flags: number, offset: number, original: number) => {
    view.setBigUint64(at, BigInt(stored), true);
    view.setUint8(at + 7, flags);
    view.setBigUint64(at + 8, BigInt(offset), true);
    view.setBigUint64(at + 16, BigInt(original), true);
  };
  reshdr(48, 250, 0x2, 201756, 250);
  reshdr(72, 0x01_0203_0405_0607, 0x2, 2 ** 40 + 5, 776);
  reshdr(96, 1000, 0x6, 208, 4000);
  view.setUint32(120, 2, true);
  reshdr(124, 32, 0, f.integrityOffset ?? 0, 32);
  return bytes;
}

describe('parseWimHeader', () => {
  it('reads every field of the 208-byte header, resource headers included', () => {
    expect(parseWimHeader(header())).toEqual({
      pipable: false,
      headerSize: 208,
      version: 68864,
      flags: 0x40082,
      compression: 'lzx',
      chunkSize: 32768,
      guid: '0xa0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
      partNumber: 1,
      totalParts: 1,
      imageCount: 3,
      blobTable: { offset: 201756, storedSize: 250, originalSize: 250, flags: 0x2 },
      xmlData: { offset: 2 ** 40 + 5, storedSize: 0x01_0203_0405_0607, originalSize: 776, flags: 0x2 },
      bootMetadata: { offset: 208, storedSize: 1000, originalSize: 4000, flags: 0x6 },
      bootIndex: 2,
      integrityTable: { offset: 0, storedSize: 32, originalSize: 32, flags: 0 },
      attributes: ['Relative path junction'],
    });
  });

  it('tells a pipable WIM by its magic, and lists attributes in the order wimlib-imagex info prints them', () => {
    const h = parseWimHeader(header({ magic: 'WLPWM\0\0\0', flags: 0x2 | 0x4 | 0x80 | 0x20000, integrityOffset: 5000 }));
    expect(h).toMatchObject({ pipable: true, compression: 'xpress' });
    expect(h.attributes).toEqual(['Pipable', 'Integrity info', 'Relative path junction', 'Readonly']);
  });

  it('reads compression from the flags: none without the compression flag, lzms with it', () => {
    expect(parseWimHeader(header({ flags: 0x80 })).compression).toBe('none');
    expect(parseWimHeader(header({ flags: 0x2 | 0x80000 })).compression).toBe('lzms');
  });

  it('reads a header inside a larger buffer at any offset, ignoring what follows', () => {
    const big = new Uint8Array(1000);
    big.set(header(), 13);
    expect(parseWimHeader(big.subarray(13)).imageCount).toBe(3);
  });

  it('refuses a buffer shorter than a header, naming where it came from', () => {
    expect(() => parseWimHeader(header().subarray(0, 100), 'http://h/x.wim')).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT', message: 'http://h/x.wim is not a WIM file: it ends after 100 bytes, inside the 208-byte header' }));
  });

  it('refuses data without a WIM signature, another header size, or an unknown compression type', () => {
    expect(() => parseWimHeader(header({ magic: 'PK\x03\x04\0\0\0\0' }))).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT', message: expect.stringContaining('no WIM signature') }));
    expect(() => parseWimHeader(header({ headerSize: 212 }))).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT', message: expect.stringContaining('212 bytes, not 208') }));
    expect(() => parseWimHeader(header({ flags: 0x2 }))).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT', message: expect.stringContaining('no compression type') }));
  });
});

describe('parsePipableBlobHeader', () => {
  it('reads the size of the resource that follows', () => {
    const bytes = new Uint8Array(40);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, 0x2b9b9ba2443db9d8n, true);
    view.setBigUint64(8, 710n, true);
    expect(parsePipableBlobHeader(bytes)).toEqual({ size: 710 });
  });

  it('refuses bytes without the pipable resource signature', () => {
    expect(() => parsePipableBlobHeader(new Uint8Array(40))).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT' }));
    expect(() => parsePipableBlobHeader(new Uint8Array(10))).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT' }));
  });
});
