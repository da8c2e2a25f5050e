import { parseCapturePlan, type CapturePlan } from './capture-schema.js';
import { PlanError, parsePlan, planValueFromText, readPlanFile, type DeployPlan } from './schema.js';

export type AnyPlan = { kind: 'deploy'; plan: DeployPlan } | { kind: 'capture'; plan: CapturePlan };

/** A deploy or a capture plan, told apart by its `kind` field; a plan without one is a deploy plan. */
export function parseAnyPlan(value: unknown, source = 'plan'): AnyPlan {
  const kind = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as { kind?: unknown }).kind : undefined;
  if (kind === 'capture') return { kind: 'capture', plan: parseCapturePlan(value, source) };
  if (kind === undefined || kind === 'deploy') return { kind: 'deploy', plan: parsePlan(value, source) };
  throw new PlanError([`kind: expected deploy or capture, not ${JSON.stringify(kind)}`], source, 'A plan says kind: capture (docs/capture.md), or kind: deploy or nothing (docs/deploy.md).');
}

export function parseAnyPlanText(text: string, source = 'plan'): AnyPlan {
  return parseAnyPlan(planValueFromText(text, source), source);
}

export async function loadAnyPlan(file: string): Promise<AnyPlan> {
  return parseAnyPlanText(await readPlanFile(file), file);
}
