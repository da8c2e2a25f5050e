import { decodeXml, imagePropertiesFromXml, parseWimXml, parseXml } from './properties.js';

// As wimlib-imagex 1.13 writes it (one line, no indentation), with a property set by
// --image-property and a Windows-style nested block with repeated elements.
const XML =
  '\uFEFF<WIM><TOTALBYTES>1581</TOTALBYTES><IMAGE INDEX="1"><NAME>n1</NAME><DIRCOUNT>1</DIRCOUNT>' +
  '<CREATIONTIME><HIGHPART>0x01DD7D36</HIGHPART><LOWPART>0x72E4D32E</LOWPART></CREATIONTIME>' +
  '<IMAGEPE><LAYOUT>{"a":"&lt;&amp;&gt;\\"x"}</LAYOUT></IMAGEPE></IMAGE>' +
  '<IMAGE INDEX="2"><NAME>Windows &amp; more ünï</NAME><DESCRIPTION></DESCRIPTION>' +
  '<WINDOWS><LANGUAGES><LANGUAGE>en-US</LANGUAGE><LANGUAGE>de-DE</LANGUAGE></LANGUAGES><VERSION><BUILD>19045</BUILD></VERSION></WINDOWS>' +
  '<NOTE><![CDATA[a <raw> & text]]></NOTE><EMPTY/><CHAR>&#x1F600;&#65;</CHAR></IMAGE></WIM>';

describe('WIM XML properties', () => {
  it('flattens each image into wimlib property paths, entities decoded', () => {
    const images = parseWimXml(XML);
    expect(images.map((i) => i.index)).toEqual([1, 2]);
    expect(images[0]!.properties).toEqual({
      NAME: 'n1',
      DIRCOUNT: '1',
      'CREATIONTIME/HIGHPART': '0x01DD7D36',
      'CREATIONTIME/LOWPART': '0x72E4D32E',
      'IMAGEPE/LAYOUT': '{"a":"<&>\\"x"}',
    });
    expect(images[1]!.properties).toMatchObject({
      NAME: 'Windows & more ünï',
      DESCRIPTION: '',
      'WINDOWS/LANGUAGES/LANGUAGE': 'en-US',
      'WINDOWS/LANGUAGES/LANGUAGE[2]': 'de-DE',
      'WINDOWS/VERSION/BUILD': '19045',
      NOTE: 'a <raw> & text',
      EMPTY: '',
      CHAR: '😀A',
    });
  });

  it('finds an image by index or by name, and lists the images when there is no such one', () => {
    expect(imagePropertiesFromXml(XML, 1)['IMAGEPE/LAYOUT']).toBe('{"a":"<&>\\"x"}');
    expect(imagePropertiesFromXml(XML, '2')['WINDOWS/VERSION/BUILD']).toBe('19045');
    expect(imagePropertiesFromXml(XML, 'Windows & more ünï').NAME).toBe('Windows & more ünï');
    expect(() => imagePropertiesFromXml(XML, 3, 'ref.wim')).toThrow(/ref\.wim has no image with index 3; it holds: 1 "n1", 2 "Windows & more ünï"/);
    expect(() => imagePropertiesFromXml(XML, 'nope')).toThrow(expect.objectContaining({ code: 'IMAGE_NOT_FOUND' }));
  });

  it('ignores the whitespace of indented XML, comments and the declaration', () => {
    const pretty = '<?xml version="1.0"?>\n<!-- made by hand -->\n<WIM>\n  <IMAGE INDEX=\'1\'>\n    <NAME>a</NAME>\n    <IMAGEPE>\n      <LAYOUT> x </LAYOUT>\n    </IMAGEPE>\n  </IMAGE>\n</WIM>\n';
    expect(parseWimXml(pretty)).toEqual([{ index: 1, properties: { NAME: 'a', 'IMAGEPE/LAYOUT': ' x ' } }]);
  });

  it('refuses XML that is not well formed, as a damaged WIM', () => {
    for (const broken of ['<WIM><IMAGE INDEX="1"><NAME>x</IMAGE></WIM>', '<WIM><IMAGE>', '<WIM></WIM><WIM/>', '<WIM>&bogus;</WIM>', '<WIM><</WIM>']) {
      expect(() => parseXml(broken)).toThrow(expect.objectContaining({ code: 'WIM_CORRUPT' }));
    }
    expect(() => parseWimXml('<NOTWIM/>')).toThrow(/starts with <NOTWIM>/);
  });

  it('decodes UTF-16LE with and without a byte-order mark, and UTF-8', () => {
    const text = '<WIM><IMAGE INDEX="1"><NAME>ünï 😀</NAME></IMAGE></WIM>';
    const le = Buffer.from(text, 'utf16le');
    expect(decodeXml(Buffer.concat([Buffer.from([0xff, 0xfe]), le]))).toBe(text);
    expect(decodeXml(le)).toBe(text);
    expect(decodeXml(Buffer.from(text, 'utf8'))).toBe(text);
    const be = Buffer.from(le);
    be.swap16();
    expect(decodeXml(Buffer.concat([Buffer.from([0xfe, 0xff]), be]))).toBe(text);
  });
});
