import { rm } from 'node:fs/promises';

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
