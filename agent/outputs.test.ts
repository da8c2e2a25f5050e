import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentOutputs } from './outputs.js';
import type { AgentEvent } from './events/index.js';

const deployed = { type: 'deployed', v: 1, time: '2026-11-30T12:00:00.000Z', disk: '/dev/vda', hostname: 'tech-b', machineId: null, partitions: [], durationMs: 12_000, after: 'shell' } as unknown as AgentEvent;

describe('the screens beside a technician console', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imagepe-outputs-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('say what comes next after an unattended run, and not while a technician decides it on another console', async () => {
    const [serial, screen] = [join(dir, 'ttyS0'), join(dir, 'tty1')];
    await Promise.all([writeFile(serial, ''), writeFile(screen, '')]);
    const log = join(dir, 'log');
    await writeFile(log, '');
    const { openSync } = await import('node:fs');
    const outputs = new AgentOutputs([serial], [screen], openSync(log, 'w'));
    outputs.event(deployed);
    expect(await readFile(screen, 'utf8')).toContain('DEPLOYED /dev/vda as tech-b in 12s; next: shell');
    expect(await readFile(serial, 'utf8')).toContain('"type":"deployed"');
    await Promise.all([writeFile(screen, ''), writeFile(serial, '')]);
    outputs.reserve(serial);
    outputs.event(deployed);
    const text = await readFile(screen, 'utf8');
    expect(text).toContain('DEPLOYED /dev/vda as tech-b in 12s');
    expect(text).not.toContain('next:');
    // The serial console the technician answers on gets nothing of it: the conversation says it.
    expect(await readFile(serial, 'utf8')).toBe('');
  });
});
