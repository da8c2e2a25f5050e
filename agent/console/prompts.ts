import { ImagepeError } from '../../core/index.js';
import { WIDTH, wrap } from './render.js';
import type { Terminal } from './terminal.js';

/** Writes text as lines that fit the width; continuation lines are indented. */
export function say(term: Terminal, text: string, indent = '  '): void {
  for (const l of wrap(text, WIDTH, indent)) term.write(`${l}\n`);
}

/** Thrown when the technician answers "q": the conversation goes back to the question before. */
export class GoBack extends Error {
  constructor() {
    super('back to the question before');
    this.name = 'GoBack';
  }
}

/** A parse function throws this (or an ImagepeError) to have the question asked again, with the reason. */
export class InvalidAnswer extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidAnswer';
  }
}

/** The word that goes back one question, from any question but the password. */
export const BACK = 'q';
/** The only answer that lets something destructive go on. */
export const YES = 'yes';
export const CONFIRM_PROMPT = 'Type yes to go on, anything else to stop:';

/**
 * The prompt as written: the question, the default in brackets, and ": " (only a space after a
 * question that ends in "?" or ":"). A default too long to fit goes on a line of its own before.
 */
export function promptLines(question: string, shownDefault?: string): { before: string[]; prompt: string } {
  const end = /[?:]$/.test(question) ? ' ' : ': ';
  if (!shownDefault) return { before: [], prompt: `${question}${end}` };
  const inline = `${question} [${shownDefault}]: `;
  if (inline.length <= WIDTH) return { before: [], prompt: inline };
  return { before: wrap(`(Enter for ${shownDefault})`, WIDTH, '  '), prompt: `${question} [Enter]: ` };
}

export interface AskOptions<T> {
  /** What an empty answer means; "" accepts an empty answer without showing it. */
  default?: string;
  /**
   * The answer given when the question was asked before: it becomes the default, so going back
   * or starting again costs the technician only Enter. Left out when it no longer parses.
   */
  previous?: string | undefined;
  /** Whether "q" goes back (default); false makes it an answer like any other. */
  back?: boolean;
  /** Turns the answer into a value; throws InvalidAnswer or an ImagepeError to ask again. */
  parse?: (answer: string) => T;
}

/** The default a question offers: the earlier answer while it still parses, else the usual one. */
export function defaultOf<T>(options: Pick<AskOptions<T>, 'default' | 'previous' | 'parse'>): string | undefined {
  const { previous } = options;
  if (previous === undefined || previous === '' || previous === options.default) return options.default;
  try {
    options.parse?.(previous);
    return previous;
  } catch {
    // The share changed under it (a WIM file that now exists, a name now taken): offer the usual one.
    return options.default;
  }
}

/**
 * Asks until the answer parses, saying in one line why an answer was not taken. Answers are
 * trimmed; "q" goes back one question (GoBack).
 */
export async function ask<T = string>(term: Terminal, question: string, options: AskOptions<T> = {}): Promise<T> {
  const def = defaultOf(options);
  const { before, prompt } = promptLines(question, def);
  for (;;) {
    for (const l of before) term.write(`${l}\n`);
    term.write(prompt);
    let answer = (await term.readLine()).trim();
    if (options.back !== false && answer.toLowerCase() === BACK) throw new GoBack();
    if (answer === '' && def !== undefined) answer = def;
    if (answer === '' && def === undefined) {
      term.write('  An answer is needed.\n');
      continue;
    }
    try {
      return options.parse ? options.parse(answer) : (answer as T);
    } catch (e) {
      if (!(e instanceof InvalidAnswer) && !(e instanceof ImagepeError)) throw e;
      for (const l of e.message.split('\n')) say(term, `  ${l}`, '    ');
    }
  }
}

export type Choice<R> = { row: R; number: number } | { key: string };

export interface ChooseOptions<R> {
  /** The rendered table, its rows numbered from 1 in the order of `rows`. */
  table: readonly string[];
  /** The question under the table: "Image number". */
  prompt: string;
  default?: string;
  /** The earlier answer (a number or a letter), the default while it still fits the table. */
  previous?: string | undefined;
  /** Letters that may be answered instead of a number, with what they mean. */
  keys?: Readonly<Record<string, string>>;
  /** Why a row cannot be chosen, or undefined when it can. */
  refuse?: (row: R) => string | undefined;
}

/** Shows a numbered table and asks for a row number (or one of the extra letters). */
export async function choose<R>(term: Terminal, title: string, rows: readonly R[], options: ChooseOptions<R>): Promise<Choice<R>> {
  say(term, `\n${title}`);
  for (const l of options.table) term.write(`${l}\n`);
  const keys = options.keys ?? {};
  const keyText = Object.entries(keys).map(([k, what]) => `${k} = ${what}`);
  const range = rows.length === 1 ? '1' : `a number from 1 to ${rows.length}`;
  return ask<Choice<R>>(term, options.prompt, {
    ...(options.default !== undefined ? { default: options.default } : {}),
    previous: options.previous,
    parse: (answer) => {
      const key = answer.toLowerCase();
      if (key in keys) return { key };
      const n = /^\d+$/.test(answer) ? Number(answer) : NaN;
      const row = rows[n - 1];
      if (row === undefined) throw new InvalidAnswer(`Answer with ${rows.length ? range : 'a letter'}${keyText.length ? `, or ${keyText.join(', ')}` : ''}.`);
      const why = options.refuse?.(row);
      if (why) throw new InvalidAnswer(`Number ${n} cannot be used: ${why}.`);
      return { row, number: n };
    },
  });
}

/** choose() for a table without extra letters: the row itself. */
export async function chooseRow<R>(term: Terminal, title: string, rows: readonly R[], options: Omit<ChooseOptions<R>, 'keys'>): Promise<R> {
  const choice = await choose(term, title, rows, options);
  if (!('row' in choice)) throw new Error(`choose() returned the letter ${choice.key} without letters`);
  return choice.row;
}

export interface DestructiveSummary {
  /** What is about to happen, naming the disk by path, model and size. */
  action: string;
  /** The heading over the list of what will be lost. */
  lossTitle: string;
  losses: readonly string[];
  /** Said instead of the list when nothing will be lost (a blank disk). */
  nothingLost: string;
}

/** "y", "YES", "Yes", "yep": someone who meant yes and did not type it as asked. */
export function looksLikeYes(answer: string): boolean {
  return answer !== YES && /^y[a-z]{0,4}$/i.test(answer);
}

/**
 * Names the disk and what will be lost, and goes on only when the technician types yes,
 * exactly. A near miss ("y", "YES") is asked once more, since a tired hand meant yes and a
 * refusal it is not; anything else (Enter, "no", a second near miss) is a no, and the
 * technician is told so. "q" goes back to the question before; nothing is done either way.
 */
export async function confirmDestructive(term: Terminal, summary: DestructiveSummary): Promise<boolean> {
  say(term, `\n${summary.action}`);
  if (summary.losses.length) {
    say(term, summary.lossTitle);
    for (const loss of summary.losses) say(term, `  - ${loss}`, '    ');
  } else {
    say(term, summary.nothingLost);
  }
  for (let attempt = 1; ; attempt++) {
    term.write(`${CONFIRM_PROMPT} `);
    const answer = (await term.readLine()).trim();
    if (answer === YES) return true;
    if (answer.toLowerCase() === BACK) throw new GoBack();
    if (attempt === 1 && looksLikeYes(answer)) {
      term.write(`  Only "${YES}", typed out in lower case, goes on; nothing was done yet.\n`);
      continue;
    }
    term.write(`Not confirmed (only "${YES}" goes on): nothing was done.\n`);
    return false;
  }
}
