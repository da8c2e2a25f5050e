import { GoBack } from './prompts.js';

/**
 * One question of a conversation, or a few that belong together (the share and its
 * credentials). Resolves false when it asked nothing (a choice with only one possible answer
 * made for the technician), so that "q" after it goes back past it.
 */
export type Step = () => Promise<boolean | void>;

/**
 * Runs the steps in order; a GoBack from a step runs the last step before it that asked
 * something again. A GoBack from the first step that asks leaves, for the caller to go back
 * further. Steps keep their answers themselves, so one asked again offers the earlier answer.
 */
export async function runSteps(steps: readonly Step[]): Promise<void> {
  const asked: number[] = [];
  for (let i = 0; i < steps.length; ) {
    try {
      const didAsk = await steps[i]!();
      if (didAsk !== false) asked.push(i);
      i++;
    } catch (e) {
      if (!(e instanceof GoBack)) throw e;
      const before = asked.pop();
      if (before === undefined) throw e;
      i = before;
    }
  }
}
