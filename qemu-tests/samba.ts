import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { ImagepeError, run } from '../core/index.js';

export interface SambaServer {
  /** The port on 127.0.0.1 the server listens on. */
  port: number;
  stop(): Promise<void>;
}

export interface SambaOptions {
  /** A scratch folder for the configuration, the password database and the logs. */
  workDir: string;
  /** The share [images] serves this folder. */
  shareDir: string;
  /** The one account that may log in; it maps to root on this host, as QEMU's own smbd does. */
  password: string;
  port: number;
}

/**
 * A Samba server on 127.0.0.1 that, unlike QEMU's built-in smb=, refuses guests and checks
 * passwords, so a test can prove what a deploy does with wrong credentials. A guest reaches it
 * through a QEMU guestfwd.
 */
export async function startSamba(o: SambaOptions): Promise<SambaServer> {
  for (const d of ['private', 'lock', 'state', 'cache', 'pid', 'log']) await mkdir(join(o.workDir, d), { recursive: true });
  const conf = join(o.workDir, 'smb.conf');
  await writeFile(
    conf,
    `[global]
  private dir = ${join(o.workDir, 'private')}
  lock directory = ${join(o.workDir, 'lock')}
  state directory = ${join(o.workDir, 'state')}
  cache directory = ${join(o.workDir, 'cache')}
  pid directory = ${join(o.workDir, 'pid')}
  ncalrpc dir = ${join(o.workDir, 'ncalrpc')}
  log file = ${join(o.workDir, 'log', 'smbd.log')}
  passdb backend = tdbsam:${join(o.workDir, 'private', 'passdb.tdb')}
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = ${o.port}
  security = user
  map to guest = Never
  load printers = no
  disable spoolss = yes
  server role = standalone server
[images]
  path = ${o.shareDir}
  read only = yes
  guest ok = no
  valid users = root
`,
  );
  await run('smbpasswd', ['-c', conf, '-s', '-a', 'root'], { what: 'setting the test Samba password', timeoutMs: 30_000, input: `${o.password}\n${o.password}\n` });
  // smbd runs in a process group of its own: when it stops it signals its whole group, which
  // must not be the test runner's.
  const child: ResultPromise = execa('smbd', ['--foreground', '--configfile', conf], { reject: false, stdin: 'ignore', cleanup: true, forceKillAfterDelay: 3_000 });
  const deadline = Date.now() + 20_000;
  while (!(await listening(o.port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new ImagepeError('COMMAND_FAILED', `smbd did not start listening on 127.0.0.1:${o.port}`, { hint: `See ${join(o.workDir, 'log')}.` });
    }
    await sleep(200);
  }
  return {
    port: o.port,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
