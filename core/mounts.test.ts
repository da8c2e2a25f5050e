import { parseMountInfo } from './mounts.js';

describe('parseMountInfo', () => {
  it('reads mount point, type and source, decoding octal escapes', () => {
    const text = [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '90 22 0:50 / /mnt/my\\040image rw,nosuid,nodev,relatime shared:40 - fuse.wimlib wimlib rw,user_id=0,group_id=0',
    ].join('\n');
    expect(parseMountInfo(text)).toEqual([
      { mountPoint: '/', options: 'rw,relatime', fsType: 'ext4', source: '/dev/vda', superOptions: 'rw' },
      { mountPoint: '/mnt/my image', options: 'rw,nosuid,nodev,relatime', fsType: 'fuse.wimlib', source: 'wimlib', superOptions: 'rw,user_id=0,group_id=0' },
    ]);
  });
});
