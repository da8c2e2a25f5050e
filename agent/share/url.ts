import { posix } from 'node:path';
import { ImagepeError } from '../../core/index.js';

export type ShareLocation =
  | { kind: 'smb'; server: string; share: string; path: string; port?: number }
  | { kind: 'nfs'; server: string; export: string; path: string }
  | { kind: 'http'; url: URL }
  | { kind: 'file'; path: string }
  | { kind: 'media'; path: string };

/**
 * Parses a plan's source url. For smb the first path component is the share and the rest a
 * folder in it; nfs keeps the whole path as the export, since an export can be any directory.
 * Credentials never live in the URL: they would show up in process lists and logs.
 */
export function parseSourceUrl(text: string): ShareLocation {
  const scheme = /^([a-z]+):/.exec(text)?.[1];
  if (scheme === 'media') {
    const path = normalize(text.slice('media:'.length));
    return { kind: 'media', path };
  }
  if (scheme === 'server') {
    throw new ImagepeError('INVALID_INPUT', `source url ${text} names the deployment server the PE booted from, which only the PE knows`, {
      hint: 'Give the server\'s http:// url here, or run the plan in a PE booted from imagepe serve.',
    });
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(text, 'it is not a URL');
  }
  if (url.username || url.password) throw bad(text, 'credentials do not belong in the URL; use source.credentials');
  switch (url.protocol) {
    case 'smb:': {
      const parts = decodeURIComponent(url.pathname).split('/').filter(Boolean);
      const share = parts.shift();
      if (!url.hostname || !share) throw bad(text, 'expected smb://server/share[/folder]');
      const loc: ShareLocation = { kind: 'smb', server: url.hostname, share, path: normalize(parts.join('/')) };
      if (url.port) loc.port = Number(url.port);
      return loc;
    }
    case 'nfs:': {
      const exp = decodeURIComponent(url.pathname);
      if (!url.hostname || exp === '/' || !exp) throw bad(text, 'expected nfs://server/export[/folder]');
      return { kind: 'nfs', server: url.hostname, export: posix.normalize(exp).replace(/\/$/, ''), path: '' };
    }
    case 'http:':
    case 'https:':
      return { kind: 'http', url };
    case 'file:': {
      if (url.hostname) throw bad(text, 'expected file:///absolute/path (three slashes)');
      return { kind: 'file', path: posix.normalize(decodeURIComponent(url.pathname)) };
    }
    default:
      throw bad(text, `the scheme ${url.protocol} is not one of smb, nfs, http, https, file, media`);
  }
}

function normalize(p: string): string {
  if (p.split('/').includes('..')) throw new ImagepeError('INVALID_INPUT', `path ${p} leaves the share`);
  const n = posix.normalize(`/${p}`);
  return n === '/' ? '' : n.slice(1).replace(/\/$/, '');
}

function bad(text: string, why: string): ImagepeError {
  return new ImagepeError('INVALID_INPUT', `source url ${text} cannot be used: ${why}`, { hint: 'See docs/deploy.md for the source url forms.' });
}

/** The UNC form mount.cifs takes: //server/share. */
export function uncOf(loc: { server: string; share: string }): string {
  return `//${loc.server}/${loc.share}`;
}

/** The image's URL for an http(s) source: the image path resolved against the source URL as a folder. */
export function httpImageUrl(base: URL, image: string): URL {
  const folder = base.pathname.endsWith('/') ? base : new URL(`${base.pathname}/${base.search}`, base);
  return new URL(image.split('/').map(encodeURIComponent).join('/'), folder);
}

/**
 * A share as Windows people write it, \\server\share\folder (or //server/share/folder), turned
 * into the smb:// URL the rest of imagepe takes; undefined for text not in that form. Folder
 * names are percent-encoded, so spaces and "#" survive the URL.
 */
export function smbUrlFromUnc(text: string): string | undefined {
  const t = text.trim();
  if (!/^(\\\\|\/\/)/.test(t)) return undefined;
  const [server, ...rest] = t.slice(2).split(/[\\/]+/).filter(Boolean);
  if (!server || rest.length === 0) throw bad(t, 'expected \\\\server\\share[\\folder]');
  if (!/^[A-Za-z0-9._-]+$|^\[[0-9A-Fa-f:.]+\]$/.test(server)) throw bad(t, `"${server}" is not a server name or address`);
  if (rest.includes('..') || rest.includes('.')) throw new ImagepeError('INVALID_INPUT', `path ${rest.join('\\')} leaves the share`);
  return `smb://${server}/${rest.map(encodeURIComponent).join('/')}`;
}

/**
 * An smb:// URL, and optionally a path under it, as Windows writes it: \\server\share\folder\path.
 * Undefined for a URL that is not smb.
 */
export function uncOfUrl(url: string, below = ''): string | undefined {
  const loc = parseSourceUrl(url);
  if (loc.kind !== 'smb') return undefined;
  const parts = [loc.share, ...loc.path.split('/'), ...below.split('/')].filter(Boolean);
  return `\\\\${loc.server}\\${parts.join('\\')}`;
}
