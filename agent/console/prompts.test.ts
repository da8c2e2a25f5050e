import { ImagepeError } from '../../core/index.js';
import { ScriptedTerminal } from '../../test-support/scripted-terminal.js';
import { ask, choose, chooseRow, confirmDestructive, CONFIRM_PROMPT, GoBack, InvalidAnswer, looksLikeYes, promptLines } from './prompts.js';
import { runSteps } from './steps.js';
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

  it('goes back on q, unless q is an answer there', async () => {
    const term = new ScriptedTerminal([
      ['Even: ', 'Q'],
      ['Next? ', 'q'],
    ]);
    await expect(ask(term, 'Even', { parse: evenNumber })).rejects.toBeInstanceOf(GoBack);
    await expect(ask(term, 'Next?', { back: false })).resolves.toBe('q');
  });

  it('offers the earlier answer as the default while it still parses', async () => {
    const term = new ScriptedTerminal([
      ['Even [8]: ', ''],
      ['Even [2]: ', ''],
      ['Name [kept]: ', ''],
    ]);
    await expect(ask(term, 'Even', { default: '2', previous: '8', parse: evenNumber })).resolves.toBe(8);
    // 7 is no longer a valid answer: the usual default comes back.
    await expect(ask(term, 'Even', { default: '2', previous: '7', parse: evenNumber })).resolves.toBe(2);
    await expect(ask(term, 'Name', { default: '', previous: 'kept' })).resolves.toBe('kept');
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

  it.each(['', 'yes please', 'no', 'n', 'ok'])('takes %j for a no, and says so', async (answer) => {
    const term = new ScriptedTerminal([[CONFIRM_PROMPT, answer]]);
    await expect(confirmDestructive(term, summary)).resolves.toBe(false);
    expect(term.transcript).toContain('Not confirmed (only "yes" goes on): nothing was done.');
  });

  it.each(['y', 'YES', 'Yes', 'yep'])('asks once more after %j, a near miss, and goes on only with yes', async (answer) => {
    const again = new ScriptedTerminal([
      [CONFIRM_PROMPT, answer],
      ['typed out in lower case', 'yes'],
    ]);
    await expect(confirmDestructive(again, summary)).resolves.toBe(true);
    const twice = new ScriptedTerminal([
      [CONFIRM_PROMPT, answer],
      [CONFIRM_PROMPT, answer],
    ]);
    await expect(confirmDestructive(twice, summary)).resolves.toBe(false);
    expect(twice.transcript).toContain('Not confirmed (only "yes" goes on): nothing was done.');
  });

  it('goes back a question on q', async () => {
    const term = new ScriptedTerminal([[CONFIRM_PROMPT, 'q']]);
    await expect(confirmDestructive(term, summary)).rejects.toBeInstanceOf(GoBack);
    expect(looksLikeYes('yes')).toBe(false);
    expect(looksLikeYes('no')).toBe(false);
  });

  it('says when the disk is blank', async () => {
    const term = new ScriptedTerminal([[CONFIRM_PROMPT, 'yes']]);
    await confirmDestructive(term, { ...summary, losses: [] });
    expect(term.transcript).toContain('/dev/vda is blank: nothing on it will be lost.');
    expect(term.transcript).not.toContain('will be lost:');
  });
});

describe('runSteps', () => {
  it('goes back to the last step that asked, and out of the first one', async () => {
    const trail: string[] = [];
    let backs = 2;
    const step = (name: string, asks = true, goBack = () => false) => async () => {
      trail.push(name);
      if (goBack()) throw new GoBack();
      return asks;
    };
    await runSteps([step('a'), step('b', false), step('c', true, () => backs-- > 0)]);
    // c goes back past b (which asked nothing) to a, twice.
    expect(trail).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
    await expect(runSteps([step('x', true, () => true)])).rejects.toBeInstanceOf(GoBack);
  });
});
