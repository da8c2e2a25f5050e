import { parseWimXmlData, wimInfoFrom } from './wim-xml.js';
import type { WimHeader } from './wim-header.js';

// As wimlib writes it: one line, images in index order, times as FILETIME halves in hex.
const XML =
  '<WIM><TOTALBYTES>9000</TOTALBYTES>' +
  '<IMAGE INDEX="2"><DIRCOUNT>974</DIRCOUNT><FILECOUNT>4785</FILECOUNT><TOTALBYTES>117618314</TOTALBYTES><HARDLINKBYTES>12</HARDLINKBYTES>' +
  '<CREATIONTIME><HIGHPART>0x01DD808B</HIGHPART><LOWPART>0x98F19A90</LOWPART></CREATIONTIME>' +
  '<LASTMODIFICATIONTIME><HIGHPART>0x01DD808B</HIGHPART><LOWPART>0x9ABB5E10</LOWPART></LASTMODIFICATIONTIME>' +
  '<WIMBOOT>1</WIMBOOT><NAME>web &amp; db</NAME><DESCRIPTION>nginx &lt;1.24&gt;</DESCRIPTION><FLAGS>ServerStandard</FLAGS>' +
  '<IMAGEPE><LAYOUT>{"note":"a &lt;b&gt; &amp; \\"c\\" ünï 😀"}</LAYOUT></IMAGEPE></IMAGE>' +
  '<IMAGE INDEX="1"><DIRCOUNT>2</DIRCOUNT><FILECOUNT>x</FILECOUNT><TOTALBYTES>200026</TOTALBYTES><HARDLINKBYTES>0</HARDLINKBYTES>' +
  '<CREATIONTIME><HIGHPART>0x01DD808B</HIGHPART><LOWPART>0x98F19A90</LOWPART></CREATIONTIME>' +
  '<NAME>base</NAME><FLAGS></FLAGS></IMAGE></WIM>';

function utf16le(text: string): Uint8Array {
  return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
}

describe('parseWimXmlData', () => {
  const xml = parseWimXmlData(utf16le(XML));

  it('reads the images in index order with the fields wimlib-imagex info prints', () => {
    expect(xml.images.map((i) => i.index)).toEqual([1, 2]);
    expect(xml.images[1]).toEqual({
      index: 2,
      name: 'web & db',
      description: 'nginx <1.24>',
      directoryCount: 974,
      fileCount: 4785,
      totalBytes: 117618314,
      hardLinkBytes: 12,
      // 0x01DD808B98F19A90 ticks of 100 ns since 1601, and 3 s later; wimlib drops the fraction.
      creationTime: '2026-11-30T05:28:14.000Z',
      lastModificationTime: '2026-11-30T05:28:17.000Z',
      flags: 'ServerStandard',
      wimbootCompatible: true,
    });
  });

  it('reads what wimlib reads for missing or malformed elements: empty names, 0 for numbers, no flags, the FILETIME epoch', () => {
    expect(xml.images[0]).toMatchObject({ name: 'base', description: '', fileCount: 0, flags: undefined, wimbootCompatible: false, lastModificationTime: '1601-01-01T00:00:00.000Z' });
  });

  it('keeps each image’s properties as element paths, with entities and non-ASCII text decoded', () => {
    expect(xml.properties.get(2)!['IMAGEPE/LAYOUT']).toBe('{"note":"a <b> & \\"c\\" ünï 😀"}');
    expect(xml.properties.get(2)!['CREATIONTIME/HIGHPART']).toBe('0x01DD808B');
    expect(xml.properties.get(1)!['IMAGEPE/LAYOUT']).toBeUndefined();
  });

  it('reads the WIM’s own TOTALBYTES, which wimlib-imagex info prints as its size', () => {
    expect(xml.totalBytes).toBe(9000);
    expect(parseWimXmlData('<WIM></WIM>').totalBytes).toBeUndefined();
  });

  it('reads UTF-8 and already-decoded text alike', () => {
    expect(parseWimXmlData(Buffer.from(XML, 'utf8')).images).toEqual(xml.images);
    expect(parseWimXmlData(XML).images).toEqual(xml.images);
  });

  it('refuses XML that is cut short or has another root', () => {
    expect(() => parseWimXmlData(utf16le(XML.slice(0, 200)))).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT' }));
    expect(() => parseWimXmlData('<html></html>')).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT' }));
  });
});

describe('wimInfoFrom', () => {
  const header = { guid: '0x00', version: 68864, imageCount: 2, compression: 'xpress', chunkSize: 32768, partNumber: 1, totalParts: 1, bootIndex: 0, attributes: ['Pipable', 'Integrity info'], pipable: true } as WimHeader;

  it('describes the WIM as imaging.info() does, from its header, size and XML data', () => {
    expect(wimInfoFrom('http://h/x.wim', header, parseWimXmlData(XML))).toMatchObject({
      path: 'http://h/x.wim',
      sizeBytes: 9000,
      imageCount: 2,
      compression: 'xpress',
      hasIntegrityTable: true,
      pipable: true,
      attributes: ['Pipable', 'Integrity info'],
    });
  });

  it('refuses a header and XML data that count different numbers of images', () => {
    expect(() => wimInfoFrom('x.wim', { ...header, imageCount: 3 }, parseWimXmlData(XML))).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT', message: expect.stringContaining('counts 3 image(s), its XML data describes 2') }));
  });
});
