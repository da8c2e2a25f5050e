import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { httpImageUrl, parseCredentialsFile, parseSourceUrl, renderCredentialsFile, resolveCredentials, smbUrlFromUnc, uncOf, uncOfUrl, writeCredentialsFile } from './index.js';

describe('source urls', () => {
  it('splits smb into server, share and folder', () => {
    expect(parseSourceUrl('smb://10.0.2.4/qemu')).toEqual({ kind: 'smb', server: '10.0.2.4', share: 'qemu', path: '' });
    expect(parseSourceUrl('smb://files.lab/images/linux/debian/')).toEqual({ kind: 'smb', server: 'files.lab', share: 'images', path: 'linux/debian' });
    expect(parseSourceUrl('smb://srv:4445/s/My%20Images')).toEqual({ kind: 'smb', server: 'srv', share: 's', path: 'My Images', port: 4445 });
    expect(uncOf({ server: '10.0.2.4', share: 'qemu' })).toBe('//10.0.2.4/qemu');
  });

  it('keeps the whole nfs path as the export', () => {
    expect(parseSourceUrl('nfs://nas/export/images/')).toEqual({ kind: 'nfs', server: 'nas', export: '/export/images', path: '' });
  });

  it('parses http(s), file and media sources', () => {
    const h = parseSourceUrl('https://images.example/linux');
    expect(h.kind === 'http' && h.url.href).toBe('https://images.example/linux');
    expect(parseSourceUrl('file:///srv/share')).toEqual({ kind: 'file', path: '/srv/share' });
    expect(parseSourceUrl('media:/images')).toEqual({ kind: 'media', path: 'images' });
    expect(parseSourceUrl('media:/')).toEqual({ kind: 'media', path: '' });
  });

  it('refuses credentials in the url, missing shares, host-relative file urls and escapes', () => {
    expect(() => parseSourceUrl('smb://user:pw@server/share')).toThrow(/credentials do not belong in the URL/);
    expect(() => parseSourceUrl('smb://server')).toThrow(/expected smb:\/\/server\/share/);
    expect(() => parseSourceUrl('nfs://server/')).toThrow(/expected nfs:\/\/server\/export/);
    expect(() => parseSourceUrl('file://host/srv')).toThrow(/three slashes/);
    expect(() => parseSourceUrl('media:/../etc')).toThrow(/leaves the share/);
    expect(() => parseSourceUrl('ftp://x/y')).toThrow(/ftp: is not one of/);
  });

  it('turns a UNC path, as a Windows technician types it, into an smb URL and back', () => {
    expect(smbUrlFromUnc('\\\\10.0.2.4\\qemu')).toBe('smb://10.0.2.4/qemu');
    expect(smbUrlFromUnc(' \\\\files.lab\\images\\My Images\\ ')).toBe('smb://files.lab/images/My%20Images');
    expect(smbUrlFromUnc('//10.0.2.4/qemu/images')).toBe('smb://10.0.2.4/qemu/images');
    expect(parseSourceUrl(smbUrlFromUnc('\\\\srv\\s\\a#b')!)).toEqual({ kind: 'smb', server: 'srv', share: 's', path: 'a#b' });
    expect(smbUrlFromUnc('smb://10.0.2.4/qemu')).toBeUndefined();
    expect(smbUrlFromUnc('/srv/images')).toBeUndefined();
    expect(() => smbUrlFromUnc('\\\\server')).toThrow(/expected \\\\server\\share/);
    expect(() => smbUrlFromUnc('\\\\bad name\\s')).toThrow(/not a server name/);
    expect(() => smbUrlFromUnc('\\\\srv\\s\\..\\x')).toThrow(/leaves the share/);
    expect(uncOfUrl('smb://10.0.2.4/qemu', 'logs/pe-1.log')).toBe('\\\\10.0.2.4\\qemu\\logs\\pe-1.log');
    expect(uncOfUrl('smb://files.lab/images/My%20Images')).toBe('\\\\files.lab\\images\\My Images');
    expect(uncOfUrl('nfs://nas/export')).toBeUndefined();
  });

  it('resolves an http image against the url as a folder', () => {
    expect(httpImageUrl(new URL('http://10.0.2.2:8000/images'), 'sub/ref one.wim').href).toBe('http://10.0.2.2:8000/images/sub/ref%20one.wim');
    expect(httpImageUrl(new URL('http://h/images/'), 'ref.wim').href).toBe('http://h/images/ref.wim');
  });
});

describe('share credentials', () => {
  it('reads mount.cifs credential files, keeping spaces and = in the password', () => {
    expect(parseCredentialsFile('# share\nusername = deploy\npassword=p a=ss \ndomain=LAB\n')).toEqual({ username: 'deploy', password: 'p a=ss ', domain: 'LAB' });
    expect(() => parseCredentialsFile('password=x\n', 'cred')).toThrow(/cred has no username= line/);
  });

  it('uses guest without credentials', async () => {
    expect(await resolveCredentials(undefined)).toEqual({ username: 'guest', password: '' });
    expect(await resolveCredentials({ username: 'u' })).toEqual({ username: 'u', password: '' });
  });

  it('refuses values that would inject another line', () => {
    expect(() => renderCredentialsFile({ username: 'u', password: 'x\nusername=root' })).toThrow(/line break/);
  });

  it('writes the file 0600 in a private 0700 directory and removes both', async () => {
    const f = await writeCredentialsFile({ username: 'deploy', password: 's3cret' });
    try {
      expect((await stat(f.path)).mode & 0o777).toBe(0o600);
      expect((await stat(dirname(f.path))).mode & 0o777).toBe(0o700);
      expect(await readFile(f.path, 'utf8')).toBe('username=deploy\npassword=s3cret\n');
      expect(await resolveCredentials({ file: f.path })).toEqual({ username: 'deploy', password: 's3cret' });
    } finally {
      await f.remove();
    }
    await expect(stat(dirname(f.path))).rejects.toThrow(/ENOENT/);
  });
});
