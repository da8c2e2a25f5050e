import { readAssignments, renderValue, rewriteAssignments, valueText } from './shell.js';

const upper = (w: string) => (w.startsWith('resume=') ? w.toUpperCase() : undefined);

describe('shell configuration files', () => {
  it('reads assignments the way the shell does: quotes, escapes, continuations, export, comments', () => {
    const text = [
      '# GRUB_CMDLINE_LINUX="commented out"',
      'GRUB_DEFAULT=0',
      "GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`",
      'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash" # the default',
      "GRUB_CMDLINE_LINUX='console=ttyS0 resume=UUID=abc'",
      'export RESUME=UUID=def\\',
      '-ghi',
      'A="one \\"two\\" \\$three $HOME ${X:-y}" B=plain',
      'echo GRUB_FAKE=not-an-assignment',
      'if [ -f x ]; then',
      '  INNER="in a block"',
      'fi',
    ].join('\n');
    const got = readAssignments(text).map((a) => [a.name, valueText(a.parts), a.line]);
    expect(got).toEqual([
      ['GRUB_DEFAULT', '0', 2],
      ['GRUB_DISTRIBUTOR', '`lsb_release -i -s 2> /dev/null || echo Debian`', 3],
      ['GRUB_CMDLINE_LINUX_DEFAULT', 'quiet splash', 4],
      ['GRUB_CMDLINE_LINUX', 'console=ttyS0 resume=UUID=abc', 5],
      ['RESUME', 'UUID=def-ghi', 6],
      ['A', 'one "two" $three $HOME ${X:-y}', 8],
      ['B', 'plain', 8],
      ['INNER', 'in a block', 11],
    ]);
    // An escaped $ is literal text; a real expansion is kept apart.
    const a = readAssignments(text).find((x) => x.name === 'A')!;
    expect(a.parts.filter((p) => p.kind === 'expansion').map((p) => p.text)).toEqual(['$HOME', '${X:-y}']);
  });

  it('rewrites words of literal text only, writes back only what changed, and keeps the rest byte for byte', () => {
    const text = "# resume=keep-me\nGRUB_CMDLINE_LINUX='console=ttyS0 resume=uuid=abc'\nOTHER=\"resume=x\" # comment\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT quiet\"\n";
    const r = rewriteAssignments(text, (w, name) => (name === 'OTHER' ? undefined : upper(w)));
    expect(r.text).toBe("# resume=keep-me\nGRUB_CMDLINE_LINUX=\"console=ttyS0 RESUME=UUID=ABC\"\nOTHER=\"resume=x\" # comment\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT quiet\"\n");
    expect(r.changes).toEqual([{ line: 2, name: 'GRUB_CMDLINE_LINUX', from: 'resume=uuid=abc', to: 'RESUME=UUID=ABC' }]);
    expect(rewriteAssignments(text, () => undefined)).toEqual({ text, changes: [] });
  });

  it('writes a value back in double quotes that the shell reads as the same value', () => {
    const parts = [
      { kind: 'literal' as const, text: 'a "b" $c `d` \\e ' },
      { kind: 'expansion' as const, text: '$GRUB_CMDLINE_LINUX' },
    ];
    const rendered = renderValue(parts);
    expect(rendered).toBe('"a \\"b\\" \\$c \\`d\\` \\\\e $GRUB_CMDLINE_LINUX"');
    const back = readAssignments(`X=${rendered}`)[0]!;
    expect(back.parts).toEqual(parts);
  });
});
