import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { removeDir, tempDir } from '../test-support/tree.js';
import { generalize } from './generalize.js';

const MACHINE_ID = '4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99\n';

async function put(root: string, path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

/** A reference root as a Debian machine leaves it after it has run for a while. */
async function makeReferenceRoot(root: string): Promise<void> {
  await put(root, 'etc/machine-id', MACHINE_ID);
  await mkdir(join(root, 'var/lib/dbus'), { recursive: true });
  await symlink('/etc/machine-id', join(root, 'var/lib/dbus/machine-id'));
  for (const k of ['rsa', 'ecdsa', 'ed25519']) {
    await put(root, `etc/ssh/ssh_host_${k}_key`, 'PRIVATE');
    await put(root, `etc/ssh/ssh_host_${k}_key.pub`, 'PUBLIC');
  }
  await put(root, 'etc/ssh/sshd_config', 'PermitRootLogin no\n');
  await put(root, 'var/lib/systemd/random-seed', 'seed');
  await put(root, 'var/lib/dhcp/dhclient.eth0.leases', 'lease {}');
  await put(root, 'etc/udev/rules.d/70-persistent-net.rules', 'SUBSYSTEM=="net"');
  await put(root, 'etc/udev/rules.d/99-local.rules', '# keep me');
  await put(root, 'var/lib/cloud/instances/i-123/user-data.txt', 'x');
  await put(root, 'var/lib/cloud/seed/nocloud/meta-data', 'instance-id: seed');
  await mkdir(join(root, 'var/lib/cloud'), { recursive: true });
  await symlink('/var/lib/cloud/instances/i-123', join(root, 'var/lib/cloud/instance'));
  await put(root, 'var/log/syslog', 'lots of lines\n');
  await put(root, 'var/log/syslog.1', 'older lines\n');
  await put(root, 'var/log/apt/history.log.2.gz', 'gz');
  await put(root, 'var/log/journal/4f3c2a1b/system.journal', 'journal');
  await put(root, 'root/.bash_history', 'rm -rf /tmp/x\n');
  await put(root, 'home/alice/.bash_history', 'ls\n');
  await put(root, 'home/alice/.zsh_history', 'ls\n');
  await put(root, 'home/alice/notes.txt', 'keep me\n');
  await put(root, 'etc/hostname', 'reference\n');
}

describe('generalize', () => {
  let root: string;

  beforeEach(async () => {
    root = await tempDir('gen');
    await makeReferenceRoot(root);
  });

  afterEach(async () => {
    await removeDir(root);
  });

  it('lists what it would change in a dry run and changes nothing', async () => {
    const r = await generalize(root, { dryRun: true });
    const paths = r.items.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/etc/machine-id',
        '/var/lib/dbus/machine-id',
        '/etc/ssh/ssh_host_rsa_key',
        '/etc/ssh/ssh_host_ed25519_key.pub',
        '/var/lib/systemd/random-seed',
        '/var/lib/dhcp/dhclient.eth0.leases',
        '/etc/udev/rules.d/70-persistent-net.rules',
        '/var/lib/cloud/instance',
        '/var/lib/cloud/instances',
        '/var/log/syslog',
        '/var/log/syslog.1',
        '/var/log/journal/4f3c2a1b',
        '/root/.bash_history',
        '/home/alice/.zsh_history',
      ]),
    );
    expect(r.items.find((i) => i.path === '/etc/machine-id')!.action).toBe('empty');
    expect(r.items.find((i) => i.path === '/var/log/syslog')!.action).toBe('truncate');
    expect(r.items.find((i) => i.path === '/var/log/syslog.1')!.action).toBe('remove');
    expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe(MACHINE_ID);
    expect(existsSync(join(root, 'etc/ssh/ssh_host_rsa_key'))).toBe(true);
  });

  it('removes the machine-specific state and keeps everything else', async () => {
    await generalize(root);
    expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe('');
    for (const gone of [
      'var/lib/dbus/machine-id',
      'etc/ssh/ssh_host_rsa_key',
      'etc/ssh/ssh_host_ecdsa_key.pub',
      'var/lib/systemd/random-seed',
      'var/lib/dhcp/dhclient.eth0.leases',
      'etc/udev/rules.d/70-persistent-net.rules',
      'var/lib/cloud/instance',
      'var/lib/cloud/instances',
      'var/log/syslog.1',
      'var/log/apt/history.log.2.gz',
      'var/log/journal/4f3c2a1b',
      'root/.bash_history',
      'home/alice/.bash_history',
      'home/alice/.zsh_history',
    ]) {
      expect([gone, existsSync(join(root, gone))]).toEqual([gone, false]);
    }
    expect((await stat(join(root, 'var/log/syslog'))).size).toBe(0);
    for (const kept of ['etc/ssh/sshd_config', 'etc/udev/rules.d/99-local.rules', 'var/lib/cloud/seed/nocloud/meta-data', 'home/alice/notes.txt', 'etc/hostname', 'var/log/journal']) {
      expect([kept, existsSync(join(root, kept))]).toEqual([kept, true]);
    }
  });

  it('is idempotent: a second run finds only the emptied machine-id and the emptied logs', async () => {
    await generalize(root);
    const again = await generalize(root, { dryRun: true });
    expect(again.items.every((i) => i.action !== 'remove')).toBe(true);
  });

  it('resolves absolute links inside the reference root, never on the host', async () => {
    // /var/log in the reference points at /srv/log: an absolute path that must mean ROOT/srv/log.
    const hostSide = await tempDir('host-log');
    try {
      await put(hostSide, 'precious.log', 'host data\n');
      await removeDir(join(root, 'var/log'));
      await symlink(hostSide, join(root, 'var/log'));
      await put(root, `${hostSide.slice(1)}/reference.log`, 'reference data\n');
      await generalize(root);
      expect(await readFile(join(hostSide, 'precious.log'), 'utf8')).toBe('host data\n');
      expect((await stat(join(root, hostSide.slice(1), 'reference.log'))).size).toBe(0);
    } finally {
      await removeDir(hostSide);
    }
  });

  it('refuses to run on the live root', async () => {
    await expect(generalize('/')).rejects.toMatchObject({ code: 'REFUSED' });
    await expect(generalize('/proc/..')).rejects.toMatchObject({ code: 'REFUSED' });
  });

  it('says so when the root does not exist', async () => {
    await expect(generalize(join(root, 'nope'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
