import { splitPartNames } from './split-parts.js';
import { mountExclusions, mountPointsBelow } from './other-filesystems.js';
import { applyNeededBytes, ALLOCATED_BYTES_PROPERTY } from './wim.js';
import type { MountEntry } from '../core/index.js';
import type { WimImage } from './info.js';

describe('splitPartNames', () => {
  it.each([
    ['parts/x.swm', 3, ['parts/x.swm', 'parts/x2.swm', 'parts/x3.swm']],
    ['/srv/install.swm', 11, ['/srv/install.swm', ...Array.from({ length: 10 }, (_, i) => `/srv/install${i + 2}.swm`)]],
    ['/srv/y', 2, ['/srv/y', '/srv/y2']],
    ['/srv/base.wim.swm', 2, ['/srv/base.wim.swm', '/srv/base.wim2.swm']],
    ['/srv/whole.wim', 1, ['/srv/whole.wim']],
  ])('%s of %i parts', (first, total, want) => {
    expect(splitPartNames(first, total)).toEqual(want);
  });
});

const m = (mountPoint: string): MountEntry => ({ mountPoint, fsType: 'tmpfs', source: 'tmpfs', options: 'rw', superOptions: 'rw' });

describe('mountPointsBelow', () => {
  it('lists the outermost mounts strictly below the root, as paths in the capture, once each', () => {
    const mounts = ['/', '/srv/ref', '/srv/ref/proc', '/srv/ref/mnt/data', '/srv/ref/mnt/data/inner', '/srv/refx/other', '/srv/ref/tmp', '/srv/ref/tmp', '/srv'].map(m);
    expect(mountPointsBelow('/srv/ref', mounts)).toEqual(['/mnt/data', '/proc', '/tmp']);
  });
  it('takes every mount for the root directory /', () => {
    expect(mountPointsBelow('/', ['/', '/proc', '/sys', '/sys/fs/cgroup'].map(m))).toEqual(['/proc', '/sys']);
  });
  it('lists nothing for a source with no mounts below it', () => {
    expect(mountPointsBelow('/srv/ref', ['/', '/srv/ref'].map(m))).toEqual([]);
  });
});

describe('mountExclusions', () => {
  it('leaves out what is inside each mount point but keeps the directory', () => {
    expect(mountExclusions(['/proc', '/mnt/with space'])).toEqual(['/proc/*', '/mnt/with space/*']);
  });
  it.each(['/mnt/a*b', '/mnt/q?', '/mnt/[x]', '/mnt/back\\slash'])('refuses %s, which wimlib cannot name exactly', (p) => {
    expect(() => mountExclusions([p])).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
  });
});

describe('applyNeededBytes', () => {
  const image = { totalBytes: 400 * 1024 ** 3, hardLinkBytes: 1000 } as WimImage;
  it('takes the allocated bytes the capture recorded', () => {
    expect(applyNeededBytes(image, { [ALLOCATED_BYTES_PROPERTY]: '16384' })).toBe(16384);
  });
  it('falls back to the files’ lengths less hard links for an image without it, or with a bad figure', () => {
    expect(applyNeededBytes(image, undefined)).toBe(400 * 1024 ** 3 - 1000);
    expect(applyNeededBytes(image, { [ALLOCATED_BYTES_PROPERTY]: 'lots' })).toBe(400 * 1024 ** 3 - 1000);
  });
});
