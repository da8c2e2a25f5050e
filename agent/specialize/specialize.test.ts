import { hostsWithName, newMachineId, parseMode } from './index.js';

describe('specialize helpers', () => {
  it('makes 32-hex machine ids that differ', () => {
    const a = newMachineId();
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(a[12]).toBe('4');
    expect(newMachineId()).not.toBe(a);
  });

  it('replaces or adds the 127.0.1.1 line', () => {
    expect(hostsWithName('127.0.0.1\tlocalhost\n127.0.1.1\treference\n::1\tlocalhost\n', 'pc1')).toBe('127.0.0.1\tlocalhost\n127.0.1.1\tpc1\n::1\tlocalhost\n');
    expect(hostsWithName('127.0.0.1 localhost\n::1 localhost\n', 'pc1')).toBe('127.0.0.1 localhost\n127.0.1.1\tpc1\n::1 localhost\n');
    expect(hostsWithName('', 'pc1')).toBe('127.0.1.1\tpc1\n');
  });

  it('reads octal modes', () => {
    expect(parseMode('0640')).toBe(0o640);
    expect(parseMode('755')).toBe(0o755);
    expect(parseMode(0o600)).toBe(0o600);
  });
});
