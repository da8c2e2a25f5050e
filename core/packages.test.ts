import { FILES, TOOLS } from './tools.js';
import { PACKAGE_GROUPS, missingFromStatus, packagesOf } from './packages.js';

describe('Debian packages', () => {
  it('installs every package a tool or file imagepe uses comes from', () => {
    const core = new Set<string>(PACKAGE_GROUPS.core);
    const needed = [...TOOLS.map((t) => t.debianPackage), ...FILES.map((f) => f.debianPackage)];
    expect(needed.filter((p) => !core.has(p))).toEqual([]);
  });

  it('lists each package once across groups', () => {
    const all = packagesOf(['core', 'tests', 'container']);
    expect(all.length).toBe(Object.values(PACKAGE_GROUPS).flat().length);
    expect(all[0]).toBe('wimtools');
    expect(all).toContain('docker.io');
  });

  it('reads what dpkg-query says is installed', () => {
    const status = ['wimtools\tinstall ok installed', 'xorriso\tdeinstall ok config-files', 'libc6:amd64\tinstall ok installed', ''].join('\n');
    expect(missingFromStatus(['wimtools', 'xorriso', 'libc6', 'never-heard-of'], status)).toEqual(['xorriso', 'never-heard-of']);
  });
});
