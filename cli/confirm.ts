import { createInterface } from 'node:readline/promises';
import { ImagepeError } from '../core/index.js';

/** A destructive command that must ask cannot run where nobody can answer. */
export function requireTerminal(message: string, hint: string): void {
  if (!process.stdin.isTTY) throw new ImagepeError('REFUSED', message, { hint });
}

/** Asks on stderr (stdout stays for results); only the word yes goes on. */
export async function askYes(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(`${question} Type yes to go on: `)).trim().toLowerCase() === 'yes';
  } finally {
    rl.close();
  }
}
