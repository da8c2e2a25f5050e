import { jest } from '@jest/globals';
import yargs from 'yargs';
import { planCommand } from './plan.js';

async function runPlan(args: string[]): Promise<{ out: string; error: unknown }> {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await yargs(args).option('json', { type: 'boolean', default: false }).command(planCommand).strict().fail((m, e) => {
      throw e ?? new Error(m);
    }).parseAsync();
    return { out, error: undefined };
  } catch (error) {
    return { out, error };
  } finally {
    spy.mockRestore();
  }
}

describe('imagepe plan', () => {
  it('validates the template plan', async () => {
    const r = await runPlan(['plan', 'validate', 'templates/plans/linux-gpt-both.yaml']);
    expect(r.error).toBeUndefined();
    expect(r.out).toMatch(/^templates\/plans\/linux-gpt-both\.yaml: valid deploy plan\n {2}source: {5}smb:\/\/10\.0\.2\.4\/qemu\/images/);
  });

  it('names the wrong field and exits with INVALID_INPUT', async () => {
    const r = await runPlan(['plan', 'validate', 'docs/deploy.md']);
    expect(r.error).toMatchObject({ code: 'INVALID_INPUT' });
    expect((r.error as Error).message).toMatch(/docs\/deploy\.md is not a valid plan/);
  });

  it('prints the JSON Schema', async () => {
    const r = await runPlan(['plan', 'schema']);
    const schema = JSON.parse(r.out) as { title: string; required: string[] };
    expect(schema.title).toBe('imagepe deploy plan');
    // apply may be left out with layout: from-image.
    expect(schema.required).toEqual(expect.arrayContaining(['source', 'target']));
  });

  it('validates a capture plan and says so', async () => {
    const r = await runPlan(['plan', 'validate', 'templates/plans/capture-linux.yaml']);
    expect(r.error).toBeUndefined();
    expect(r.out).toMatch(/^templates\/plans\/capture-linux\.yaml: valid capture plan\n {2}source: {6}\(--disk/);
    expect(r.out).toContain('destination: smb://10.0.2.4/qemu/images reference.wim, image "reference", a new WIM, lzx, integrity table');
  });

  it('prints the capture plan schema with --kind capture', async () => {
    const r = await runPlan(['plan', 'schema', '--kind', 'capture']);
    const schema = JSON.parse(r.out) as { title: string; required: string[] };
    expect(schema.title).toBe('imagepe capture plan');
    expect(schema.required).toEqual(['kind', 'destination']);
  });
});
