import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, tempDir } from '../test-support/tree.js';
import { measureTree } from './source-size.js';

describe('measureTree', () => {
  it('sums file data in nested directories, counts a hard-linked inode once and does not follow links', async () => {
    const root = await tempDir('size');
    try {
      for (let d = 0; d < 40; d++) {
        await mkdir(join(root, `d${d}/sub`), { recursive: true });
        await writeFile(join(root, `d${d}/sub/f`), Buffer.alloc(1000 + d));
      }
      await writeFile(join(root, 'big'), Buffer.alloc(100_000));
      await link(join(root, 'big'), join(root, 'big-again'));
      await symlink('/usr', join(root, 'usr-link'));
      const expected = 40 * 1000 + (39 * 40) / 2 + 100_000;
      expect(await measureTree(root)).toEqual({ bytes: expected, files: 43, directories: 81 });
    } finally {
      await removeDir(root);
    }
  });
});
