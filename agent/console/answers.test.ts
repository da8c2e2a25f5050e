import { CommandFailedError, ImagepeError } from '../../core/index.js';
import { parseImageName, parseNewWimFile, uniqueName } from './capture-job.js';
import { isPermissionError, parseShareUrl, parseUserName } from './share-prompt.js';

describe('share answers', () => {
  it('takes smb, nfs and file URLs, without a trailing slash', () => {
    expect(parseShareUrl('smb://10.0.2.4/qemu/images/')).toBe('smb://10.0.2.4/qemu/images');
    expect(parseShareUrl('nfs://nas/export')).toBe('nfs://nas/export');
    expect(parseShareUrl('file:///')).toBe('file:///');
    expect(parseShareUrl(' file:///srv/images/ ')).toBe('file:///srv/images');
  });

  it('refuses what it cannot list, and URLs with credentials in them', () => {
    expect(() => parseShareUrl('http://example.org/images')).toThrow(/Expected smb:/);
    expect(() => parseShareUrl('media:/images')).toThrow(/Expected smb:/);
    expect(() => parseShareUrl('smb://user:pw@server/share')).toThrow(ImagepeError);
    expect(() => parseShareUrl('smb://server')).toThrow(ImagepeError);
  });

  it('reads DOMAIN\\user and plain user names', () => {
    expect(parseUserName('LAB\\deploy')).toEqual({ domain: 'LAB', username: 'deploy' });
    expect(parseUserName('deploy')).toEqual({ username: 'deploy' });
    expect(() => parseUserName('two words')).toThrow(/without spaces/);
  });

  it('tells a refused login from other mount failures', () => {
    const failure = (stderrTail: string) => new CommandFailedError({ command: 'mount -t cifs //s/q', args: [], exitCode: 32, signal: undefined, stderrTail }, 'mounting //s/q');
    expect(isPermissionError(failure('mount error(13): Permission denied'))).toBe(true);
    expect(isPermissionError(failure('mount error(2): No such file or directory'))).toBe(false);
    expect(isPermissionError(failure('mount error(112): Host is down'))).toBe(false);
    expect(isPermissionError(Object.assign(new Error('open'), { code: 'EACCES' }))).toBe(true);
  });
});

describe('capture answers', () => {
  it('adds .wim, refuses paths out of the share and files that exist', () => {
    const existing = new Set(['images/base.wim']);
    expect(parseNewWimFile('images/new', existing)).toBe('images/new.wim');
    expect(parseNewWimFile('images/new.WIM', existing)).toBe('images/new.WIM');
    expect(() => parseNewWimFile('/srv/x.wim', existing)).toThrow(/relative/);
    expect(() => parseNewWimFile('../x.wim', existing)).toThrow(/inside the share/);
    expect(() => parseNewWimFile('images//x.wim', existing)).toThrow(/inside the share/);
    expect(() => parseNewWimFile('images/base.wim', existing)).toThrow(/choose it by number to append/);
  });

  it('keeps image names unique in the WIM and not only digits', () => {
    const taken = new Set(['Base', 'base-20260102']);
    expect(parseImageName('Base 2', taken, 'images/base.wim')).toBe('Base 2');
    expect(() => parseImageName('Base', taken, 'images/base.wim')).toThrow('images/base.wim already has an image named "Base".');
    expect(() => parseImageName('7', taken, 'images/base.wim')).toThrow(/index/);
    expect(uniqueName('base-20260102', taken)).toBe('base-20260102-2');
    expect(uniqueName('other', taken)).toBe('other');
  });
});
