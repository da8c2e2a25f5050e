import { readFile } from 'node:fs/promises';
import { parseLayoutText } from '../../partition/index.js';
import { FROM_IMAGE } from '../plan/index.js';
import { capturePlanFromAnswers, deployPlanFromAnswers, STANDARD_LAYOUT } from './plans.js';

const answers = {
  url: 'smb://10.0.2.4/qemu/images',
  credentials: undefined,
  file: 'base.wim',
  index: 2,
  layoutRecorded: false,
  disk: '/dev/vda',
  hostname: 'pe-525400123456',
};

describe('plans from the answers', () => {
  it('embed the same standard layout as templates/layouts/uefi-bios-gpt.yaml', async () => {
    const template = parseLayoutText(await readFile('templates/layouts/uefi-bios-gpt.yaml', 'utf8'), 'uefi-bios-gpt.yaml');
    expect(parseLayoutText(JSON.stringify(STANDARD_LAYOUT), 'x.json')).toEqual(template);
  });

  it('deploy the standard layout, wiped, with the image on root', () => {
    const plan = deployPlanFromAnswers(answers);
    expect(plan.source).toMatchObject({ url: answers.url, image: 'base.wim', index: 2 });
    expect(plan.source.credentials).toBeUndefined();
    expect(plan.target).toMatchObject({ disk: { path: '/dev/vda' }, wipe: true });
    expect(plan.target.layout).not.toBe(FROM_IMAGE);
    expect(plan.apply).toEqual([{ partition: 'root', mode: 'auto' }]);
    expect(plan.specialize.hostname).toBe('pe-525400123456');
    expect(plan.bootloader).toMatchObject({ type: 'grub', firmware: 'both' });
    expect(plan).toMatchObject({ after: 'shell', logs: true });
  });

  it('deploy a recorded layout from the image, with no apply list', () => {
    const plan = deployPlanFromAnswers({ ...answers, layoutRecorded: true, credentials: { username: 'deploy', password: 's3cret', domain: 'LAB' } });
    expect(plan.target.layout).toBe(FROM_IMAGE);
    expect(plan.apply).toEqual([]);
    expect(plan.source.credentials).toEqual({ username: 'deploy', password: 's3cret', domain: 'LAB' });
  });

  it('capture with every destination field set', () => {
    const plan = capturePlanFromAnswers({
      url: 'file:///srv/images',
      credentials: undefined,
      disk: '/dev/vda',
      partition: { number: 3 },
      generalize: true,
      file: 'images/capture-20260102.wim',
      append: false,
      name: 'capture-20260102',
      description: '',
      compression: 'xpress',
    });
    expect(plan).toEqual({
      kind: 'capture',
      source: { disk: { path: '/dev/vda' }, partition: { number: 3 } },
      generalize: true,
      destination: { url: 'file:///srv/images', file: 'images/capture-20260102.wim', name: 'capture-20260102', description: '', compression: 'xpress', append: false, integrity: true, pipable: false },
      after: 'shell',
      logs: true,
    });
  });
});
