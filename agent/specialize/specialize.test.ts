import { lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../test-support/tree.js';
import { hostsWithName, newMachineId, parseMode, specializeLinux } from './index.js';

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

describe('specializeLinux on a tree', () => {
  let root: string;
  beforeEach(async () => {
    root = await tempDir('imagepe-specialize-');
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(join(root, 'var/lib/dbus'), { recursive: true });
    await writeFile(join(root, 'etc/machine-id'), `${'ab'.repeat(16)}\n`);
  });
  afterEach(() => removeDir(root));

  it('keeps a D-Bus machine-id that links to /etc/machine-id, and the new id behind it', async () => {
    await symlink('/etc/machine-id', join(root, 'var/lib/dbus/machine-id'));
    const r = await specializeLinux(root, { machineId: 'new', removeSshHostKeys: false, files: [] });
    expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe(`${r.machineId}\n`);
    expect(await readlink(join(root, 'var/lib/dbus/machine-id'))).toBe('/etc/machine-id');
    expect(r.removed).not.toContain('/var/lib/dbus/machine-id');
  });

  it('removes a stale D-Bus copy of the old id', async () => {
    await writeFile(join(root, 'var/lib/dbus/machine-id'), `${'ab'.repeat(16)}\n`);
    const r = await specializeLinux(root, { machineId: 'new', removeSshHostKeys: false, files: [] });
    expect(await lstat(join(root, 'var/lib/dbus/machine-id')).catch(() => undefined)).toBeUndefined();
    expect(r.removed).toContain('/var/lib/dbus/machine-id');
    expect(r.machineId).toMatch(/^[0-9a-f]{32}$/);
  });
});
