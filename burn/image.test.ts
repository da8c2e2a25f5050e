import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, tempDir } from '../test-support/tree.js';
import { expectedSha256, mountOf, splitDev } from './image.js';

const A = 'a'.repeat(64);
const B = 'B'.repeat(64);

describe('where an image is stored', () => {
  it('splits a dev_t as glibc does', () => {
    expect(splitDev(0x10300n)).toEqual({ major: 259, minor: 0 });
    expect(splitDev(0x801n)).toEqual({ major: 8, minor: 1 });
  });

  it('finds the innermost mount holding a path, with escaped spaces', () => {
    const info = [
      '22 1 0:30 / / rw shared:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w',
      '40 22 0:41 / /srv rw shared:20 - btrfs /dev/sdb2 rw,subvol=/srv',
      '41 40 0:42 / /srv/my\\040images rw shared:21 - tmpfs tmpfs rw',
    ].join('\n');
    expect(mountOf(info, '/srv/my images/pe.iso')).toMatchObject({ at: '/srv/my images', fsType: 'tmpfs' });
    expect(mountOf(info, '/srv/other/pe.iso')).toMatchObject({ at: '/srv', source: '/dev/sdb2' });
    expect(mountOf(info, '/srvx/pe.iso')).toMatchObject({ at: '/' });
    expect(mountOf(info, '/root/pe.iso')).toMatchObject({ at: '/', fsType: 'overlay', options: 'rw,lowerdir=/l,upperdir=/u,workdir=/w' });
  });
});

describe('expectedSha256', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('burn-sums');
  });
  afterAll(async () => removeDir(dir));

  it('takes --sha256 first, lower-cased, and refuses one that is not a sha256', async () => {
    expect(await expectedSha256(join(dir, 'x.iso'), B)).toEqual({ hex: B.toLowerCase(), source: '--sha256' });
    await expect(expectedSha256(join(dir, 'x.iso'), 'abc')).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it("reads IMAGE.sha256 as sha256sum writes it, before a SHA256SUMS", async () => {
    const d = join(dir, 'own');
    await mkdir(d);
    await writeFile(join(d, 'pe.iso.sha256'), `${A}  pe.iso\n`);
    await writeFile(join(d, 'SHA256SUMS'), `${B}  pe.iso\n`);
    expect(await expectedSha256(join(d, 'pe.iso'))).toEqual({ hex: A, source: join(d, 'pe.iso.sha256') });
    await writeFile(join(d, 'bad.iso.sha256'), 'not a hash\n');
    await expect(expectedSha256(join(d, 'bad.iso'))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it("finds the image's line in SHA256SUMS (binary mode, ./ prefix), and nothing when it is not listed", async () => {
    const d = join(dir, 'sums');
    await mkdir(d);
    await writeFile(join(d, 'SHA256SUMS'), `${B}  other.iso\n${A} *./pe.iso\n`);
    expect(await expectedSha256(join(d, 'pe.iso'))).toEqual({ hex: A, source: join(d, 'SHA256SUMS') });
    expect(await expectedSha256(join(d, 'third.iso'))).toBeUndefined();
    expect(await expectedSha256(join(dir, 'nowhere', 'pe.iso'))).toBeUndefined();
  });
});
