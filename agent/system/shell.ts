/**
 * Shell-syntax configuration files (/etc/default/grub, initramfs-tools' conf.d, dracut.conf.d) read
 * as the shell reads them: comments, single and double quotes, backslash escapes, line
 * continuations, `export NAME=...`, and parameter expansions kept as they are. Only top-level
 * assignments are found; everything else in the file is kept byte for byte.
 */

/** A piece of an assignment's value: text the shell takes literally, or an expansion kept as written. */
export type ValuePart = { kind: 'literal'; text: string } | { kind: 'expansion'; text: string };

export interface ShellAssignment {
  name: string;
  /** The value, literal text and expansions in order. */
  parts: ValuePart[];
  /** Offsets of the value's source text in the file: [start, end). */
  start: number;
  end: number;
  /** 1-based line of the assignment. */
  line: number;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

/** Every top-level `NAME=value` of a shell file, in order. Lines the reader does not understand are skipped, not guessed at. */
export function readAssignments(text: string): ShellAssignment[] {
  const out: ShellAssignment[] = [];
  let i = 0;
  let atCommandStart = true;
  const lineAt = (pos: number) => text.slice(0, pos).split('\n').length;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n' || c === ';') {
      atCommandStart = true;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      i += 2;
      continue;
    }
    if (c === '#' && atCommandStart) {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (atCommandStart) {
      if (text.startsWith('export', i) && /[ \t]/.test(text[i + 6] ?? '')) {
        i += 6;
        continue;
      }
      NAME.lastIndex = i;
      const m = NAME.exec(text);
      // NAME=value, or bash's NAME+=value (dracut.conf.d uses it).
      const op = m ? (text[i + m[0].length] === '=' ? 1 : text.startsWith('+=', i + m[0].length) ? 2 : 0) : 0;
      if (m && op) {
        const start = i + m[0].length + op;
        const { parts, end } = readWord(text, start);
        out.push({ name: m[0], parts, start, end, line: lineAt(i) });
        i = end;
        // A second assignment may follow on the same command (A=1 B=2); a command word ends it.
        continue;
      }
    }
    // Anything else: a command; skip its words to the end of the command.
    atCommandStart = false;
    const { end } = readWord(text, i);
    i = end > i ? end : i + 1;
  }
  return out;
}

/** Reads one shell word from `start`; returns its parts and where it ends. */
function readWord(text: string, start: number): { parts: ValuePart[]; end: number } {
  const parts: ValuePart[] = [];
  const literal = (s: string) => {
    const last = parts[parts.length - 1];
    if (last?.kind === 'literal') last.text += s;
    else parts.push({ kind: 'literal', text: s });
  };
  let i = start;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === ';' || c === '&' || c === '|' || c === '(' || c === ')') break;
    if (c === '\\') {
      if (text[i + 1] === '\n') i += 2;
      else {
        literal(text[i + 1] ?? '');
        i += 2;
      }
      continue;
    }
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      const stop = close < 0 ? text.length : close;
      literal(text.slice(i + 1, stop));
      i = stop + 1;
      continue;
    }
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') {
        const d = text[i]!;
        if (d === '\\' && i + 1 < text.length) {
          const e = text[i + 1]!;
          if (e === '\n') i += 2;
          else if ('$`"\\'.includes(e)) {
            literal(e);
            i += 2;
          } else {
            literal(`\\${e}`);
            i += 2;
          }
          continue;
        }
        if (d === '$' || d === '`') {
          const x = readExpansion(text, i);
          parts.push({ kind: 'expansion', text: x.text });
          i = x.end;
          continue;
        }
        literal(d);
        i++;
      }
      i++;
      continue;
    }
    if (c === '$' || c === '`') {
      const x = readExpansion(text, i);
      parts.push({ kind: 'expansion', text: x.text });
      i = x.end;
      continue;
    }
    literal(c);
    i++;
  }
  return { parts, end: Math.min(i, text.length) };
}

/** `$NAME`, `${...}`, `$(...)` or a backquoted command, kept as written. */
function readExpansion(text: string, i: number): { text: string; end: number } {
  if (text[i] === '`') {
    const close = text.indexOf('`', i + 1);
    const end = close < 0 ? text.length : close + 1;
    return { text: text.slice(i, end), end };
  }
  const next = text[i + 1];
  if (next === '{' || next === '(') {
    const open = next;
    const close = open === '{' ? '}' : ')';
    let depth = 0;
    for (let j = i + 1; j < text.length; j++) {
      if (text[j] === open) depth++;
      else if (text[j] === close && --depth === 0) return { text: text.slice(i, j + 1), end: j + 1 };
    }
    return { text: text.slice(i), end: text.length };
  }
  NAME.lastIndex = i + 1;
  const m = NAME.exec(text);
  if (m) return { text: `$${m[0]}`, end: i + 1 + m[0].length };
  if (next && /[0-9@*#?$!-]/.test(next)) return { text: text.slice(i, i + 2), end: i + 2 };
  return { text: '$', end: i + 1 };
}

/** The value as one string, expansions as written (`$GRUB_CMDLINE_LINUX quiet`). */
export function valueText(parts: readonly ValuePart[]): string {
  return parts.map((p) => p.text).join('');
}

/** A value written back as a double-quoted word: literal text escaped, expansions kept. */
export function renderValue(parts: readonly ValuePart[]): string {
  return `"${parts.map((p) => (p.kind === 'literal' ? p.text.replace(/[\\"$`]/g, (ch) => `\\${ch}`) : p.text)).join('')}"`;
}

/**
 * Applies `change` to the whitespace-separated words of each assignment's literal text (an
 * expansion is never a word of its own to change, and splits no word) and writes back only the
 * assignments that changed. Returns the new text and what changed, by line.
 */
export function rewriteAssignments(
  text: string,
  change: (word: string, assignment: string) => string | undefined,
): { text: string; changes: { line: number; name: string; from: string; to: string }[] } {
  const changes: { line: number; name: string; from: string; to: string }[] = [];
  const edits: { start: number; end: number; value: string }[] = [];
  for (const a of readAssignments(text)) {
    let changed = false;
    const parts = a.parts.map((p) => {
      if (p.kind !== 'literal') return p;
      const rewritten = p.text.replace(/[^\s]+/g, (word) => {
        const to = change(word, a.name);
        if (to === undefined || to === word) return word;
        changed = true;
        changes.push({ line: a.line, name: a.name, from: word, to });
        return to;
      });
      return { kind: 'literal' as const, text: rewritten };
    });
    if (changed) edits.push({ start: a.start, end: a.end, value: renderValue(parts) });
  }
  let out = text;
  for (const e of edits.reverse()) out = out.slice(0, e.start) + e.value + out.slice(e.end);
  return { text: out, changes };
}
