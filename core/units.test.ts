import { formatBytes, formatDuration, parseSize } from './units.js';

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['512MiB', 512 * 1024 ** 2],
    ['2 GiB', 2 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['4k', 4096],
    ['100MB', 100_000_000],
    ['1TB', 1e12],
    ['3TiB', 3 * 1024 ** 4],
    ['10b', 10],
  ])('reads %s as %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', 'abc', '12 parsecs', '-1G', '1Ki', 'MiB'])('rejects "%s" with a hint that shows the accepted forms', (text) => {
    expect(() => parseSize(text)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', hint: expect.stringContaining('512MiB') }));
  });

  it('refuses a size that is not a whole number of bytes', () => {
    expect(() => parseSize('1.5')).toThrow(/not a whole number of bytes/);
  });

  it('accepts whole numbers and refuses negative ones', () => {
    expect(parseSize(123)).toBe(123);
    expect(() => parseSize(-5)).toThrow(/not a size/);
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.50 KiB'],
    [512 * 1024 ** 2, '512 MiB'],
    [15.5 * 1024 ** 3, '15.5 GiB'],
  ])('writes %d as %s', (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });
});

describe('formatDuration', () => {
  it.each([
    [3.2, '3s'],
    [75, '1m15s'],
    [4000, '1h06m'],
    [-1, '?'],
  ])('writes %d s as %s', (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });
});
