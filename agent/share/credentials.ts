import { chmod, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImagepeError } from '../../core/index.js';

export interface ShareCredentials {
  username: string;
  password: string;
  domain?: string;
}

export type CredentialsSpec = { file: string } | { username: string; password?: string | undefined; domain?: string | undefined };

/** Reads credentials from the plan or from a file of key=value lines (mount.cifs format). */
export async function resolveCredentials(spec: CredentialsSpec | undefined): Promise<ShareCredentials> {
  if (!spec) return { username: 'guest', password: '' };
  if ('file' in spec) {
    let text: string;
    try {
      text = await readFile(spec.file, 'utf8');
    } catch (e) {
      throw new ImagepeError('NOT_FOUND', `credentials file ${spec.file} cannot be read: ${(e as Error).message}`);
    }
    return parseCredentialsFile(text, spec.file);
  }
  const out: ShareCredentials = { username: spec.username, password: spec.password ?? '' };
  if (spec.domain) out.domain = spec.domain;
  return out;
}

export function parseCredentialsFile(text: string, source = 'credentials file'): ShareCredentials {
  const kv = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const at = line.indexOf('=');
    if (at <= 0) continue;
    // Passwords may hold spaces and "="; only the key is trimmed.
    kv.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1));
  }
  const username = kv.get('username') ?? kv.get('user');
  if (!username) throw new ImagepeError('INVALID_INPUT', `${source} has no username= line`);
  const out: ShareCredentials = { username: username.trim(), password: kv.get('password') ?? kv.get('pass') ?? '' };
  const domain = kv.get('domain') ?? kv.get('dom');
  if (domain) out.domain = domain.trim();
  return out;
}

export function renderCredentialsFile(c: ShareCredentials): string {
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'string' && /[\n\r]/.test(v)) throw new ImagepeError('INVALID_INPUT', `the share ${k} holds a line break`);
  }
  return `username=${c.username}\npassword=${c.password}\n${c.domain ? `domain=${c.domain}\n` : ''}`;
}

export interface CredentialsFile {
  path: string;
  remove(): Promise<void>;
}

/**
 * Writes credentials for mount.cifs to a file only root can read, in a fresh private
 * directory: a password given on the mount command line would be visible in /proc to everyone.
 * The file is created 0600 before anything is written to it.
 */
export async function writeCredentialsFile(c: ShareCredentials, dir: string = tmpdir()): Promise<CredentialsFile> {
  const privateDir = await mkdtemp(join(dir, 'imagepe-cred-'));
  await chmod(privateDir, 0o700);
  const path = join(privateDir, 'credentials');
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(renderCredentialsFile(c), 'utf8');
  } finally {
    await fh.close();
  }
  return { path, remove: () => rm(privateDir, { recursive: true, force: true }) };
}
