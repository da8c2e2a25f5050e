import { EVENT_SCHEMA_VERSION } from './index.js';
import { stderrTailOf } from '../../core/index.js';
import { AgentEventSchema } from './index.js';
import { CAPTURE_STEPS, CaptureEventSchema, DeployEventSchema, makeCaptureEvent, makeDeployEvent, type DeployEventBody } from './index.js';
import { CommandFailedError, ImagepeError } from '../../core/index.js';

describe('deploy events', () => {
  const now = new Date('2026-11-25T21:00:00.000Z');

  it('start with the version, type and time, as the agent lines do', () => {
    const e = makeDeployEvent({ type: 'step', step: 'check', status: 'started', detail: 'ref.wim' }, now);
    expect(JSON.stringify(e)).toBe(`{"imagepe":${EVENT_SCHEMA_VERSION},"type":"step","time":"2026-11-25T21:00:00.000Z","step":"check","status":"started","detail":"ref.wim"}`);
  });

  it('validate each type against the schema', () => {
    const bodies = [
      { type: 'progress', step: 'apply', phase: 'Extracting file data', unit: 'bytes', done: 10, total: 20, rate: 5, etaSeconds: 2 },
      { type: 'deployed', disk: '/dev/vda', hostname: 'pc1', machineId: 'a'.repeat(32), partitions: [{ number: 1, name: 'root', fsType: 'ext4', uuid: 'u', mount: '/' }], durationMs: 1, after: 'reboot' },
      { type: 'failed', step: 'check', code: 'WIM_CORRUPT', message: 'bad', stderrTail: '', diskTouched: false },
      { type: 'log', level: 'warning', text: 'w' },
    ] satisfies DeployEventBody[];
    for (const b of bodies) expect(DeployEventSchema.safeParse(makeDeployEvent(b, now)).success).toBe(true);
  });

  it('carry the capture steps and the captured event in the same stream', () => {
    for (const step of CAPTURE_STEPS) {
      expect(CaptureEventSchema.safeParse(makeCaptureEvent({ type: 'step', step, status: 'done' }, now)).success).toBe(true);
      expect(DeployEventSchema.safeParse(makeDeployEvent({ type: 'failed', step, code: 'REFUSED', message: 'm', stderrTail: '', diskTouched: false }, now)).success).toBe(true);
    }
    const captured = makeCaptureEvent({ type: 'captured', wim: 'images/ref.wim', index: 2, name: 'custom', sizeBytes: 10, durationMs: 5, after: 'poweroff' }, now);
    expect(JSON.stringify(captured)).toMatch(/^\{"imagepe":1,"type":"captured","time":"2026-11-25T21:00:00.000Z","wim":"images\/ref.wim"/);
    expect(CaptureEventSchema.safeParse(captured).success).toBe(true);
    expect(AgentEventSchema.safeParse(captured).success).toBe(true);
    expect(CaptureEventSchema.safeParse({ ...captured, index: 0 }).success).toBe(false);
    expect(CaptureEventSchema.safeParse(makeDeployEvent({ type: 'deployed', disk: 'd', hostname: null, machineId: null, partitions: [], durationMs: 1, after: 'reboot' }, now)).success).toBe(false);
  });

  it('reject unknown steps and missing fields', () => {
    expect(DeployEventSchema.safeParse({ imagepe: 1, type: 'step', time: 't', step: 'reticulate', status: 'started' }).success).toBe(false);
    expect(DeployEventSchema.safeParse({ imagepe: 1, type: 'failed', time: 't', step: 'check', message: 'm' }).success).toBe(false);
    expect(DeployEventSchema.safeParse({ imagepe: 2, type: 'log', time: 't', level: 'info', text: 'x' }).success).toBe(false);
  });

  it('find the stderr tail of a failed command through causes', () => {
    const failed = new CommandFailedError({ command: 'mkfs.ext4 /dev/x', args: [], exitCode: 1, signal: undefined, stderrTail: 'no space' });
    expect(stderrTailOf(failed)).toBe('no space');
    expect(stderrTailOf(new ImagepeError('WIM_CORRUPT', 'x', { cause: failed }))).toBe('no space');
    expect(stderrTailOf(new Error('plain'))).toBe('');
  });
});
