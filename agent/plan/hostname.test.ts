import { expandHostname, isFirmwarePlaceholder, unknownTokens } from './hostname.js';

const facts = { serial: 'VMware-42 1a 2b.3C', mac: '52:54:00:AB:cd:01', uuid: '4c4c4544-0031-3410-8052-b4c04f303032' };

describe('hostname templates', () => {
  it('expands each token', () => {
    expect(expandHostname('pc-{mac}', facts)).toBe('pc-525400abcd01');
    expect(expandHostname('{serial}', facts)).toBe('vmware-42-1a-2b-3c');
    expect(expandHostname('h-{uuid}', facts)).toBe('h-4c4c4544-0031-3410-8052-b4c04f303032');
    expect(expandHostname('web-{random}', facts, () => 'a1b2c3')).toBe('web-a1b2c3');
  });

  it('gives a different {random} each time by default', () => {
    expect(expandHostname('n-{random}', facts)).not.toBe(expandHostname('n-{random}', facts));
  });

  it('makes a valid hostname label: lower case, no leading or trailing hyphen, at most 63', () => {
    expect(expandHostname('--Lab_PC {mac}--', facts)).toBe('lab-pc-525400abcd01');
    expect(expandHostname(`${'x'.repeat(70)}`, facts)).toHaveLength(63);
  });

  it('refuses placeholders firmware writes instead of a serial', () => {
    expect(() => expandHostname('{serial}', { serial: 'To Be Filled By O.E.M.' })).toThrow(/uses \{serial\}, but this machine has none/);
    expect(() => expandHostname('{mac}', {})).toThrow(/\{mac\}/);
  });

  it('refuses every kind of firmware placeholder as a serial or a UUID, and takes real ones', () => {
    for (const serial of ['System Serial Number', 'Default string', '0123456789', 'Not Specified', 'None', 'OEM', '00000000', 'XXXXXXXXXX', 'Chassis Serial Number']) {
      expect(() => expandHostname('{serial}', { serial })).toThrow(new RegExp(`has none \\(its firmware says "${serial}"`));
    }
    for (const uuid of ['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '03000200-0400-0500-0006-000700080009']) {
      expect(() => expandHostname('{uuid}', { uuid })).toThrow(/uses \{uuid\}, but this machine has none/);
    }
    expect(expandHostname('{serial}', { serial: 'CZC1234XYZ' })).toBe('czc1234xyz');
    expect(expandHostname('{serial}', { serial: '7' })).toBe('7');
    expect(isFirmwarePlaceholder('4c4c4544-0031-3410-8052-b4c04f303032')).toBe(false);
  });

  it('lists unknown tokens', () => {
    expect(unknownTokens('a-{serial}-{foo}-{bar}')).toEqual(['foo', 'bar']);
    expect(() => expandHostname('{foo}', facts)).toThrow(/unknown token \{foo\}/);
    expect(() => expandHostname('___', facts)).toThrow(/no valid hostname characters/);
  });
});
