import { ImagepeError } from '../../core/index.js';
import { ScriptedTerminal } from '../../test-support/scripted-terminal.js';
import { ask, BackToStart, choose, chooseRow, confirmDestructive, CONFIRM_PROMPT, InvalidAnswer, promptLines } from './prompts.js';
import { WIDTH } from './render.js';

const evenNumber = (a: string) => {
  if (!/^\d+$/.test(a)) throw new InvalidAnswer('Expected a number.');
  if (Number(a) % 2) throw new ImagepeError('INVALID_INPUT', `${a} is odd`);
  return Number(a);
};

describe('ask', () => {
  it('asks again with a one-line reason until the answer parses', async () => {
    const term = new ScriptedTerminal([
      ['Even: ', 'x'],
      ['Expected a number.', '3'],
      ['3 is odd', ' 4 '],
    ]);
    await expect(ask(term, 'Even', { parse: evenNumber })).resolves.toBe(4);
    expect(term.transcript).toContain('  Expected a number.\nEven: ');
  });

  it('takes the default on Enter and shows it in brackets', async () => {
    const term = new ScriptedTerminal([['Share [smb://s/q]: ', '']]);
    await expect(ask(term, 'Share', { default: 'smb://s/q' })).resolves.toBe('smb://s/q');
  });

  it('needs an answer when there is no default, and takes "" as a default for optional questions', async () => {
    const term = new ScriptedTerminal([
      ['Name: ', ''],
      ['An answer is needed.', 'n'],
      ['Description (optional): ', ''],
    ]);
    await expect(ask(term, 'Name')).resolves.toBe('n');
    await expect(ask(term, 'Description (optional)', { default: '' })).resolves.toBe('');
  });

  it('goes back to the first question on q, from any question', async () => {
    const term = new ScriptedTerminal([['Even: ', 'Q']]);
    await expect(ask(term, 'Even', { parse: evenNumber })).rejects.toBeInstanceOf(BackToStart);
  });

  it('puts a default too long for the line on a line of its own', () => {
    const url = `smb://server/${'x'.repeat(80)}`;
    const { before, prompt } = promptLines('Share URL', url);
    expect(prompt).toBe('Share URL [Enter]: ');
    expect(before.join('')).toContain('x'.repeat(40));
    for (const l of before) expect(l.length).toBeLessThanOrEqual(WIDTH);
    expect(promptLines('Go on? [Y/n]').prompt).toBe('Go on? [Y/n]: ');
    expect(promptLines('[a]gain?').prompt).toBe('[a]gain? ');
  });
});

describe('choose', () => {
  const rows = ['alpha', 'beta', 'gamma'];
  const table = rows.map((r, i) => `${i + 1}  ${r}`);

  it('returns the row for its number, and re-asks for numbers out of range', async () => {
    const term = new ScriptedTerminal([
      ['Row number: ', '0'],
      ['Answer with a number from 1 to 3.', '4'],
      ['Row number: ', 'two'],
      ['Row number: ', '2'],
    ]);
    await expect(chooseRow(term, 'Rows:', rows, { table, prompt: 'Row number' })).resolves.toBe('beta');
    expect(term.transcript).toContain('Rows:\n1  alpha\n2  beta\n3  gamma\n');
  });

  it('takes the extra letters and says why a row cannot be chosen', async () => {
    const term = new ScriptedTerminal([
      ['Row, or n for none [n]: ', '3'],
      ['Number 3 cannot be used: it is gamma.', 'N'],
    ]);
    const choice = await choose(term, 'Rows:', rows, { table, prompt: 'Row, or n for none', default: 'n', keys: { n: 'none' }, refuse: (r) => (r === 'gamma' ? 'it is gamma' : undefined) });
    expect(choice).toEqual({ key: 'n' });
  });
});

describe('confirmDestructive', () => {
  const summary = {
    action: 'This ERASES /dev/vda (QEMU HARDDISK, 20.0 GiB).',
    lossTitle: 'Everything on /dev/vda will be lost:',
    losses: ['GPT: 3 partitions', "vda3: ext4 'root' 19.5 GiB"],
    nothingLost: '/dev/vda is blank: nothing on it will be lost.',
  };

  it('goes on only for the word yes', async () => {
    const term = new ScriptedTerminal([[CONFIRM_PROMPT, 'yes']]);
    await expect(confirmDestructive(term, summary)).resolves.toBe(true);
    expect(term.transcript).toContain('This ERASES /dev/vda (QEMU HARDDISK, 20.0 GiB).');
    expect(term.transcript).toContain("  - vda3: ext4 'root' 19.5 GiB");
  });

  it.each(['', 'y', 'YES', 'Yes', 'yes please', 'q', 'no'])('takes %j for a no, and says so', async (answer) => {
    const term = new ScriptedTerminal([[CONFIRM_PROMPT, answer]]);
    await expect(confirmDestructive(term, summary)).resolves.toBe(false);
    expect(term.transcript).toContain('Not confirmed (only "yes" goes on): nothing was done.');
  });

  it('says when the disk is blank', async () => {
    const term = new ScriptedTerminal([[CONFIRM_PROMPT, 'yes']]);
    await confirmDestructive(term, { ...summary, losses: [] });
    expect(term.transcript).toContain('/dev/vda is blank: nothing on it will be lost.');
    expect(term.transcript).not.toContain('will be lost:');
  });
});
